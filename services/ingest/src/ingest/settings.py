"""Ingest configuration: the shared pieces plus the knobs of the webhook endpoint."""

from __future__ import annotations

from typing import Final, Self

from pydantic import Field, model_validator

from pipeline_common.recall.events import WEBHOOK_MAX_BYTES
from pipeline_common.settings import KafkaSettings, LoggingSettings, WebhookSettings

#: Room a record needs beyond its value: key (at most 256 bytes), CloudEvents headers, batch framing.
RECORD_OVERHEAD_BYTES: Final = 16 * 1024
#: aiokafka's default ``max_request_size``, which is also about the broker's default ``message.max.bytes``.
KAFKA_DEFAULT_REQUEST_BYTES: Final = 1024 * 1024


class IngestSettings(KafkaSettings, WebhookSettings, LoggingSettings):
    ingest_host: str = "0.0.0.0"
    ingest_port: int = Field(default=8080, ge=1, le=65535)
    # The consumers parse webhook bodies up to WEBHOOK_MAX_BYTES: the cap can never exceed what they read.
    ingest_max_body_bytes: int = Field(
        default=KAFKA_DEFAULT_REQUEST_BYTES - RECORD_OVERHEAD_BYTES, ge=1024, le=WEBHOOK_MAX_BYTES
    )
    ingest_kafka_max_request_bytes: int = Field(
        default=KAFKA_DEFAULT_REQUEST_BYTES, ge=64 * 1024, le=WEBHOOK_MAX_BYTES + RECORD_OVERHEAD_BYTES
    )
    ingest_kafka_producers: int = Field(default=1, ge=1, le=16)
    ingest_kafka_linger_ms: int = Field(default=0, ge=0, le=1000)
    ingest_produce_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    ingest_retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    ingest_dedup_window_seconds: float = Field(default=600.0, ge=0, le=86_400)
    ingest_dedup_max_entries: int = Field(default=100_000, ge=0, le=10_000_000)
    ingest_readiness_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    ingest_shutdown_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    ingest_event_source: str = Field(default="https://recall.ai/webhooks", min_length=1)

    @model_validator(mode="after")
    def _body_fits_in_a_kafka_request(self) -> Self:
        # Otherwise a body under the cap fails at the producer: a 5xx that Recall retries for a day.
        if self.ingest_max_body_bytes + RECORD_OVERHEAD_BYTES > self.ingest_kafka_max_request_bytes:
            raise ValueError(
                f"INGEST_MAX_BODY_BYTES ({self.ingest_max_body_bytes}) plus {RECORD_OVERHEAD_BYTES} bytes of record "
                f"overhead must fit in INGEST_KAFKA_MAX_REQUEST_BYTES ({self.ingest_kafka_max_request_bytes}); "
                "raise the latter (and the topics' max.message.bytes) or lower the former"
            )
        return self
