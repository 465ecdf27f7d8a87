"""Prometheus metrics of the ingest service, on a registry of its own (one per app instance)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass
class IngestMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter(
            "ingest_webhook_requests", "Webhook requests by outcome", ["outcome"], registry=self.registry
        )
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
        self.in_flight = Gauge("ingest_in_flight_requests", "Webhook requests being handled", registry=self.registry)
        self.kafka_ready = Gauge(
            "ingest_kafka_ready", "1 when the producer is connected and topics exist", registry=self.registry
        )
