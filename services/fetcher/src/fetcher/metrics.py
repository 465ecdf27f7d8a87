"""Prometheus metrics of the fetcher, on a registry of its own (the counters both workers keep are
:class:`~pipeline_common.metrics.WorkerMetrics`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import Counter, Histogram

from fetcher.state import Status
from pipeline_common.metrics import Tracked, WorkerMetrics, parse_time

#: A transcript in one of these needs nothing more from the fetcher.
TERMINAL = frozenset({Status.READY, Status.GONE, Status.REJECTED})
_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class FetcherMetrics(WorkerMetrics):
    PREFIX = "fetcher"
    EVENTS_HELP = "Recall transcript events consumed"
    OPERATOR_PROBLEMS_HELP = "Recall refused our credentials or billing (401/402/403), by kind"
    RETRY_BACKLOG_HELP = "Transcripts waiting for a retry"
    LATENCY_BUCKETS = _SECONDS
    TRACKED = "transcript"
    STATES = tuple(Status)
    TERMINAL = TERMINAL

    def __post_init__(self) -> None:
        super().__post_init__()
        r = self.registry
        self.downloads = Counter(
            "fetcher_downloads",
            "Transcript downloads by outcome (ok, expired, not_found, too_large, not_allowed, invalid, retryable, ...)",
            ["outcome"],
            registry=r,
        )
        self.download_bytes = Counter("fetcher_download_bytes", "Bytes downloaded from Recall", registry=r)
        self.download_seconds = Histogram(
            "fetcher_download_seconds", "Time to download one transcript", buckets=_SECONDS, registry=r
        )
        self.store_seconds = Histogram(
            "fetcher_store_seconds", "Time to render and store one transcript", buckets=_SECONDS, registry=r
        )
        self.end_to_end_seconds = Histogram(
            "fetcher_end_to_end_seconds",
            "From transcript.done (Recall's updated_at) to transcripts.ready",
            buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600, 86400),
            registry=r,
        )
        self.ready = Counter("fetcher_ready", "TranscriptReady events emitted", registry=r)
        self.duplicates = Counter(
            "fetcher_duplicates_suppressed",
            "transcript.done events that led to no second transcripts.ready, by how it was known",
            ["via"],
            registry=r,
        )
        self.gone = Counter("fetcher_gone", "Transcripts deleted at Recall before they were stored", registry=r)
        self.retries = Counter("fetcher_retries_scheduled", "Retries scheduled, by error kind", ["kind"], registry=r)
        self.stored_bytes = Counter(
            "fetcher_stored_bytes",
            "Bytes written to the transcript store, by object (raw, readable, txt, vtt, srt, provider_data)",
            ["object"],
            registry=r,
        )
        self.failed = Counter(
            "fetcher_failed", "TranscriptFailed published for transcripts the fetcher gave up", ["reason"], registry=r
        )

    def tracked(self, items: Iterable[tuple[str, Any]]) -> Iterator[Tracked]:
        """Every transcript of every recording."""
        for _, value in list(items):
            transcripts = (value if isinstance(value, dict) else {}).get("transcripts") or {}
            for transcript in transcripts.values() if isinstance(transcripts, dict) else ():
                document = transcript if isinstance(transcript, dict) else {}
                state = str(document.get("status") or Status.FETCHING)
                yield Tracked(state, None if state in TERMINAL else parse_time(document.get("first_seen_at")))
