"""Fetcher configuration: the shared pieces plus download limits, the host allowlist, retries and the store."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, field_validator

from pipeline_common.settings import CsvList, TranscriptStoreSettings
from pipeline_common.store import TranscriptStore, open_store
from pipeline_common.topics import TRANSCRIPT_EVENTS
from pipeline_common.worker_settings import WorkerSettings, worker_variables

#: Recall's regions and the storage its pre-signed download URLs point at (S3, virtual-hosted or path style).
DEFAULT_DOWNLOAD_HOSTS = (
    "*.recall.ai",
    "*.s3.amazonaws.com",
    "s3.amazonaws.com",
    *(
        host
        for region in ("us-east-1", "us-west-2", "eu-central-1", "ap-northeast-1")
        for host in (
            f"s3.{region}.amazonaws.com",
            f"*.s3.{region}.amazonaws.com",
            f"s3.dualstack.{region}.amazonaws.com",
        )
    ),
)


#: FETCHER_RETRY_BASE_SECONDS and the rest of the retry and limit variables; a transcript left fetching is resumed
#: after FETCHER_DEADLINE_SECONDS.
_Variables = worker_variables("fetcher", deadline_seconds=900.0)


class FetcherSettings(_Variables, WorkerSettings, TranscriptStoreSettings):  # type: ignore[misc,valid-type]
    WORKER_PREFIX = "fetcher"
    WORKER_PARTITIONS = TRANSCRIPT_EVENTS.partitions

    fetcher_app_id: str = Field(default="fetcher", pattern=r"^[A-Za-z0-9._-]{1,100}$", description="consumer group")
    fetcher_data_dir: str = Field(
        default="/tmp/recall-fetcher",  # noqa: S108 - scratch space; the state lives in Kafka and the store
        validation_alias=AliasChoices("fetcher_data_dir", "APP_DATADIR"),
        description="faust's working directory; downloads for an s3:// store are spooled under it",
    )
    fetcher_web_host: str = "0.0.0.0"
    fetcher_web_port: int = Field(default=6066, ge=1, le=65535)
    fetcher_auto_offset_reset: str = Field(default="earliest", pattern=r"^(earliest|latest)$")
    fetcher_session_timeout_seconds: float = Field(
        default=15.0,
        ge=6,
        le=1800,
        description="Kafka consumer session timeout: how soon a dead worker's partitions move",
    )
    fetcher_concurrency: int = Field(default=2, ge=1, le=32, description="transcripts in flight per worker")
    fetcher_analysis_budget_bytes: int = Field(
        default=16 * 1024 * 1024,
        ge=1024 * 1024,
        le=16 * 1024**3,
        description="bytes of transcript validated and rendered at once (about 1.5x that in memory); see budget.py",
    )

    fetcher_max_transcript_bytes: int = Field(default=100 * 1024 * 1024, ge=1024, le=2 * 1024**3)
    fetcher_download_timeout_seconds: float = Field(default=300.0, gt=0, le=3600)
    fetcher_download_hosts: CsvList = Field(
        default_factory=lambda: list(DEFAULT_DOWNLOAD_HOSTS),
        description="comma-separated hosts (or *.suffix) download URLs may point at; the API's own host is added",
    )
    fetcher_store_provider_data: bool = Field(default=False, description="also store provider_data_download_url")
    fetcher_expired_url_retries: int = Field(
        default=2, ge=0, le=10, description="fresh URLs fetched at once when a download URL is refused"
    )

    fetcher_max_attempts: int = Field(default=12, ge=1, le=1000, description="retryable failures before the DLQ")

    # Fault injection for the crash tests only (never set in production): hold the transcript in hand this long
    # right before / right after its transcripts.ready is sent, so a test can SIGKILL the worker exactly there.
    fetcher_fault_pause_before_announce_seconds: float = Field(default=0.0, ge=0, le=600)
    fetcher_fault_pause_after_announce_seconds: float = Field(default=0.0, ge=0, le=600)

    transcript_store_s3_endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint (MinIO, ...); default: boto3's (AWS_ENDPOINT_URL or AWS)"
    )
    transcript_store_s3_region: str | None = None
    transcript_store_s3_addressing_style: Literal["auto", "path", "virtual"] = "auto"

    @field_validator("fetcher_download_hosts")
    @classmethod
    def _check_hosts(cls, hosts: list[str]) -> list[str]:
        for host in hosts:
            bare = host.removeprefix("*.")
            if not bare or "/" in bare or ":" in bare or "*" in bare:
                raise ValueError(f"{host!r} is not a host name or *.suffix (no scheme, port or path)")
        return hosts

    def download_hosts(self) -> list[str]:
        """The allowlist in force: the configured hosts plus the Recall API's own host (the simulator in dev)."""
        api_host = urlsplit(self.recall_base_url).hostname
        return [*self.fetcher_download_hosts, *([api_host] if api_host else [])]

    def open_store(self) -> TranscriptStore:
        return open_store(
            self.transcript_store_url,
            s3_endpoint_url=self.transcript_store_s3_endpoint_url,
            s3_region=self.transcript_store_s3_region,
            s3_addressing_style=self.transcript_store_s3_addressing_style,
            spool_dir=Path(self.fetcher_data_dir) / "spool",
        )
