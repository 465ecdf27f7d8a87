"""Prometheus metrics of the transcriber, on a registry of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

from pipeline_common.metrics import Tracked, WorkStateCollector, operator_problem_kind, parse_time
from transcriber.state import TERMINAL, Status


@dataclass
class TranscriberMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.events = Counter("transcriber_events", "Recall events consumed", ["event_type"], registry=r)
        self.creates = Counter(
            "transcriber_creates",
            "Create Async Transcript calls by provider and outcome",
            ["provider", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter("transcriber_fallbacks", "Moves to the next attempt after a failure", registry=r)
        self.terminal_failures = Counter(
            "transcriber_terminal_failures", "TranscriptFailed emitted, by reason", ["reason"], registry=r
        )
        self.operator_problems = Counter(
            "transcriber_operator_problems",
            "Creates refused with 401/402/403 (fix credentials or billing), by kind",
            ["kind"],
            registry=r,
        )
        self.recall_calls = Counter(
            "transcriber_recall_calls",
            "Recall API calls by operation and outcome",
            ["operation", "outcome"],
            registry=r,
        )
        self.retry_backlog = Gauge("transcriber_retry_backlog", "Recordings waiting for a create retry", registry=r)
        self.dlq = Counter("transcriber_dlq", "Messages sent to transcriber.dlq", registry=r)
        self.internal_errors = Counter(
            "transcriber_internal_errors", "Unforeseen exceptions caught by the supervisor (and the sweep)", registry=r
        )
        self.reconciled = Counter(
            "transcriber_reconciled",
            "Recordings past their deadline looked up at Recall, by what Recall said",
            ["outcome"],
            registry=r,
        )
        self.expired = Counter("transcriber_expired", "Finished recordings removed after the retention", registry=r)
        self.recall_latency = Histogram(
            "transcriber_recall_api_latency_seconds",
            "Recall API call latency",
            ["operation"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )

        ProcessCollector(registry=r)

    def operator_problem(self, status: int | None) -> None:
        self.operator_problems.labels(kind=operator_problem_kind(status)).inc()

    def watch_recordings(self, items: Callable[[], Iterable[tuple[str, Any]]], deadline_seconds: float) -> None:
        """Recordings by state, the oldest unfinished one's age and those past the deadline, read from the Table's
        ``items()`` at every scrape."""
        self.registry.register(
            WorkStateCollector(
                prefix="transcriber",
                noun="recording",
                states=[status.value for status in Status],
                terminal=[status.value for status in TERMINAL],
                snapshot=lambda: recording_states(items()),
                deadline_seconds=deadline_seconds,
            )
        )


def recording_states(items: Iterable[tuple[str, Any]]) -> Iterator[Tracked]:
    """The Table's stored JSON, read as is: parsing every RecordingState at each scrape would cost far more."""
    for _, value in list(items):
        document = value if isinstance(value, dict) else {}
        state = str(document.get("status") or Status.TRANSCRIBING)
        yield Tracked(state, None if state in TERMINAL else parse_time(document.get("created_at")))
