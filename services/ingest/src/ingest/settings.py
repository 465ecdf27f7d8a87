"""Ingest configuration: the shared pieces plus the knobs of the webhook endpoint."""

from __future__ import annotations

from pydantic import Field

from pipeline_common.settings import KafkaSettings, LoggingSettings, WebhookSettings


class IngestSettings(KafkaSettings, WebhookSettings, LoggingSettings):
    ingest_host: str = "0.0.0.0"
    ingest_port: int = Field(default=8080, ge=1, le=65535)
    ingest_max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    ingest_produce_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    ingest_retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    ingest_dedup_window_seconds: float = Field(default=600.0, ge=0, le=86_400)
    ingest_dedup_max_entries: int = Field(default=100_000, ge=0, le=10_000_000)
    ingest_readiness_interval_seconds: float = Field(default=2.0, gt=0, le=60)
    ingest_shutdown_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    ingest_event_source: str = Field(default="https://recall.ai/webhooks", min_length=1)
