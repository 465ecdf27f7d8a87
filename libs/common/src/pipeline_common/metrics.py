"""Prometheus pieces shared by the services: the counters both workers keep (:class:`WorkerMetrics`), a collector
that reads a worker's per-recording Table at scrape time, and the operator-problem kinds.

The Table is the truth about what is in flight, so the gauges an operator alerts on (how many items sit in each state,
how old the oldest unfinished one is, how many are past their deadline) are computed from it when Prometheus scrapes,
not kept up to date by hand at every transition, where one missed ``dec()`` would skew them for ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline_common.logging import get_logger

_log = get_logger("pipeline_common.metrics")

#: Recall's answers that need a person (a key, a bill, a permission), as the ``kind`` label of operator problems.
OPERATOR_PROBLEM_KINDS: Final = {401: "unauthorized", 402: "payment_required", 403: "forbidden"}


def operator_problem_kind(status: int | None) -> str:
    """The bounded ``kind`` label for a 401/402/403 (``other`` for anything else that was classed as one)."""
    return OPERATOR_PROBLEM_KINDS.get(status or 0, "other")


@dataclass(frozen=True)
class Tracked:
    """One unit of work as the Table holds it: its state and when the worker first saw it."""

    state: str
    since: datetime | None


def parse_time(value: object) -> datetime | None:
    """A stored ISO-8601 timestamp (the Tables hold JSON), or None when absent or unreadable."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


class WorkStateCollector(Collector):
    """Gauges over a Table's current contents, computed at scrape time.

    ``<prefix>_<noun>s{state}``: items per state (every known state, 0 included, so a panel never has gaps);
    ``<prefix>_oldest_unfinished_<noun>_age_seconds``: age of the oldest item not in a terminal state (0 when none);
    ``<prefix>_<noun>s_past_deadline``: unfinished items older than the deadline;
    ``<prefix>_<noun>_deadline_seconds``: the deadline itself, so rules and panels need not repeat it.
    """

    def __init__(
        self,
        *,
        prefix: str,
        noun: str,
        states: Sequence[str],
        terminal: Iterable[str],
        snapshot: Callable[[], Iterable[Tracked]],
        deadline_seconds: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.states = tuple(states)
        self.terminal = frozenset(terminal)
        self.snapshot = snapshot
        self.deadline_seconds = deadline_seconds
        self.clock = clock
        self.by_state_name = f"{prefix}_{noun}s"
        self.oldest_name = f"{prefix}_oldest_unfinished_{noun}_age_seconds"
        self.past_deadline_name = f"{prefix}_{noun}s_past_deadline"
        self.deadline_name = f"{prefix}_{noun}_deadline_seconds"
        self.noun = noun

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        noun = self.noun
        return (
            GaugeMetricFamily(
                self.by_state_name, f"{noun.capitalize()}s this worker holds, by state", labels=["state"]
            ),
            GaugeMetricFamily(self.oldest_name, f"Age of the oldest {noun} not in a terminal state (0 when none)"),
            GaugeMetricFamily(self.past_deadline_name, f"{noun.capitalize()}s not finished within the deadline"),
            GaugeMetricFamily(self.deadline_name, f"How long a {noun} may take before it counts as past deadline"),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        by_state, oldest, past_deadline, deadline = self._families()
        deadline.add_metric([], self.deadline_seconds)
        try:
            items = list(self.snapshot())
        except Exception as error:
            # A broken gauge must not fail the whole scrape (which would look like the worker being down).
            _log.warning("work-state snapshot failed", metric=self.by_state_name, error=str(error))
            yield deadline
            return
        now = self.clock()
        counts = dict.fromkeys(self.states, 0)
        oldest_age = 0.0
        late = 0
        for item in items:
            counts[item.state] = counts.get(item.state, 0) + 1
            if item.state in self.terminal or item.since is None:
                continue
            age = max(0.0, (now - item.since).total_seconds())
            oldest_age = max(oldest_age, age)
            if age > self.deadline_seconds:
                late += 1
        for state, count in counts.items():
            by_state.add_metric([state], count)
        oldest.add_metric([], oldest_age)
        past_deadline.add_metric([], late)
        yield from (by_state, oldest, past_deadline, deadline)


@dataclass
class WorkerMetrics:
    """What both workers count, named ``<PREFIX>_...`` on a registry of the worker's own. A worker's metrics class
    sets the class variables and adds its own counters in ``__post_init__`` after calling this one."""

    PREFIX: ClassVar[str]
    EVENTS_HELP: ClassVar[str]
    OPERATOR_PROBLEMS_HELP: ClassVar[str]
    RETRY_BACKLOG_HELP: ClassVar[str]
    LATENCY_BUCKETS: ClassVar[tuple[float, ...]]
    #: What one entry of the Table's state gauges is ("recording", "transcript"), every state it may be in, and the
    #: states that need nothing more.
    TRACKED: ClassVar[str]
    STATES: ClassVar[Iterable[str]]
    TERMINAL: ClassVar[Iterable[str]]

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r, p = self.registry, self.PREFIX
        self.events = Counter(f"{p}_events", self.EVENTS_HELP, ["event_type"], registry=r)
        self.operator_problems = Counter(f"{p}_operator_problems", self.OPERATOR_PROBLEMS_HELP, ["kind"], registry=r)
        self.recall_calls = Counter(
            f"{p}_recall_calls", "Recall API calls by operation and outcome", ["operation", "outcome"], registry=r
        )
        self.recall_latency = Histogram(
            f"{p}_recall_api_latency_seconds",
            "Recall API call latency",
            ["operation"],
            buckets=self.LATENCY_BUCKETS,
            registry=r,
        )
        self.retry_backlog = Gauge(f"{p}_retry_backlog", self.RETRY_BACKLOG_HELP, registry=r)
        self.dlq = Counter(f"{p}_dlq", f"Messages sent to {p}.dlq", registry=r)
        self.internal_errors = Counter(
            f"{p}_internal_errors", "Unforeseen exceptions caught by the supervisor (and the sweep)", registry=r
        )
        self.expired = Counter(f"{p}_expired", "Finished recordings removed after the retention", registry=r)
        ProcessCollector(registry=r)

    def operator_problem(self, status: int | None) -> None:
        self.operator_problems.labels(kind=operator_problem_kind(status)).inc()

    def tracked(self, items: Iterable[tuple[str, Any]]) -> Iterable[Tracked]:
        """Every tracked entry of the Table's stored JSON (read as is: parsing models at each scrape costs far more)."""
        raise NotImplementedError

    def watch_table(self, items: Callable[[], Iterable[tuple[str, Any]]], deadline_seconds: float) -> None:
        """Entries by state, the oldest unfinished one's age and those past the deadline, read from the Table's
        ``items()`` at every scrape."""
        self.registry.register(
            WorkStateCollector(
                prefix=self.PREFIX,
                noun=self.TRACKED,
                states=[str(state) for state in self.STATES],
                terminal=[str(state) for state in self.TERMINAL],
                snapshot=lambda: self.tracked(items()),
                deadline_seconds=deadline_seconds,
            )
        )
