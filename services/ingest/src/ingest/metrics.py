"""Prometheus metrics of the ingest service, on a registry of its own (one per app instance)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector

#: Event types counted by name; any other becomes ``<family>.other`` or ``other``, so a label value never comes from
#: an unbounded set. recording.done is initialised at 0: "none for hours" must be a series at 0, not a missing one.
COUNTED_EVENT_TYPES: Final = (
    "recording.done",
    "recording.failed",
    "recording.deleted",
    "transcript.done",
    "transcript.failed",
    "transcript.deleted",
)
_FAMILIES: Final = frozenset({"recording", "transcript", "bot"})
#: Every outcome and status code the endpoint answers with: their series exist from the start, at 0.
OUTCOMES: Final = (
    "accepted",
    "duplicate",
    "unauthorized",
    "invalid",
    "too_large",
    "unsupported",
    "unavailable",
    "error",
)
RESPONSE_CODES: Final = (200, 400, 401, 413, 415, 500, 503)


def event_type_label(event_type: str) -> str:
    if event_type in COUNTED_EVENT_TYPES:
        return event_type
    family = event_type.split(".", 1)[0]
    return f"{family}.other" if family in _FAMILIES else "other"


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "ingest_webhook_requests",
            "Webhook requests by outcome (accepted, duplicate, unauthorized, invalid, too_large, unsupported, "
            "unavailable, error)",
            ["outcome"],
            registry=self.registry,
        )
        self.responses = Counter(
            "ingest_webhook_responses",
            "Webhook responses by HTTP status code (503: Kafka did not acknowledge; Recall will retry)",
            ["code"],
            registry=self.registry,
        )
        self.events = Counter(
            "ingest_webhook_events",
            "Verified Recall events written to Kafka, by event type",
            ["event_type"],
            registry=self.registry,
        )
        self.events.labels(event_type="recording.done")
        self.verification_failures = Counter(
            "ingest_webhook_verification_failures", "Rejected signatures by reason", ["reason"], registry=self.registry
        )
        self.produce_latency = Histogram(
            "ingest_produce_latency_seconds",
            "Time from produce to broker acknowledgement",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.body_size = Histogram(
            "ingest_webhook_body_bytes",
            "Size of webhook bodies read",
            buckets=(256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304),
            registry=self.registry,
        )
        # Children bound once: ``labels(...)`` per request costs ~3 us (a lock, a tuple, a dict lookup) each time.
        self._by_outcome = {outcome: self.requests.labels(outcome=outcome) for outcome in OUTCOMES}
        self._by_code = {code: self.responses.labels(code=str(code)) for code in RESPONSE_CODES}
        self._by_event_type: dict[str, Counter] = {}  # by label (a bounded set), filled as event types arrive
        self.in_flight = Gauge("ingest_in_flight_requests", "Webhook requests being handled", registry=self.registry)
        self.kafka_ready = Gauge(
            "ingest_kafka_ready", "1 when the producer is connected and topics exist", registry=self.registry
        )
        # process_start_time_seconds and friends: the rules tell a fresh deployment from a silent one by them.
        ProcessCollector(registry=self.registry)

    def count_response(self, outcome: str, status: int) -> None:
        by_outcome = self._by_outcome.get(outcome) or self.requests.labels(outcome=outcome)
        by_outcome.inc()
        by_code = self._by_code.get(status) or self.responses.labels(code=str(status))
        by_code.inc()

    def count_event(self, event_type: str) -> None:
        label = event_type_label(event_type)
        child = self._by_event_type.get(label)
        if child is None:
            child = self._by_event_type[label] = self.events.labels(event_type=label)
        child.inc()
