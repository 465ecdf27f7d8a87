"""Prometheus metrics of the transcriber, on a registry of its own (the counters both workers keep are
:class:`~pipeline_common.metrics.WorkerMetrics`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter

from pipeline_common.metrics import Tracked, WorkerMetrics, parse_time
from transcriber.state import TERMINAL, Status


@dataclass
class TranscriberMetrics(WorkerMetrics):
    PREFIX = "transcriber"
    EVENTS_HELP = "Recall events consumed"
    OPERATOR_PROBLEMS_HELP = "Creates refused with 401/402/403 (fix credentials or billing), by kind"
    RETRY_BACKLOG_HELP = "Recordings waiting for a create retry"
    LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
    TRACKED = "recording"
    STATES = tuple(Status)
    TERMINAL = TERMINAL

    def __post_init__(self) -> None:
        super().__post_init__()
        r = self.registry
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
        self.reconciled = Counter(
            "transcriber_reconciled",
            "Recordings past their deadline looked up at Recall, by what Recall said",
            ["outcome"],
            registry=r,
        )

    def tracked(self, items: Iterable[tuple[str, Any]]) -> Iterator[Tracked]:
        """Every recording."""
        for _, value in list(items):
            document = value if isinstance(value, dict) else {}
            state = str(document.get("status") or Status.TRANSCRIBING)
            yield Tracked(state, None if state in TERMINAL else parse_time(document.get("created_at")))
