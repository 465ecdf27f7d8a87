"""Transcriber configuration: the shared pieces plus the provider chain and the retry policy."""

from __future__ import annotations

from pydantic import AliasChoices, Field, field_validator

from pipeline_common.recall.models import Diarization
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.settings import CsvList
from pipeline_common.topics import RECORDING_EVENTS
from pipeline_common.worker_settings import WorkerSettings, worker_variables

RECALL_TRANSCRIPT_LIMIT = 10  # Recall's hard cap of transcripts per recording


#: TRANSCRIBER_RETRY_BASE_SECONDS and the rest of the retry and limit variables.
_Variables = worker_variables("transcriber")


class TranscriberSettings(_Variables, WorkerSettings):  # type: ignore[misc,valid-type]
    WORKER_PREFIX = "transcriber"
    WORKER_PARTITIONS = RECORDING_EVENTS.partitions

    transcriber_providers: list[ProviderConfig] = Field(
        default_factory=lambda: [ProviderConfig.of("recallai_async", {"language_code": "auto"})],
        min_length=1,
        description="JSON list of single-key provider objects; the first is primary",
    )
    transcriber_diarization: Diarization = Field(
        default_factory=lambda: Diarization(use_separate_streams_when_available=True)
    )
    #: Transcript-failure sub_codes worth one more try on the same provider before falling back.
    transcriber_retry_same_provider_on: CsvList = Field(default_factory=list)
    transcriber_max_attempts: int = Field(default=RECALL_TRANSCRIPT_LIMIT, ge=1, le=RECALL_TRANSCRIPT_LIMIT)
    #: Recall's firewall (403) blocked the create: retries of the same request before the recording fails.
    transcriber_firewall_max_retries: int = Field(default=3, ge=0, le=20)
    transcriber_concurrency: int = Field(
        default=8, ge=1, le=64, description="recordings in hand at once per worker (one handler per recording)"
    )
    transcriber_max_create_failures: int = Field(
        default=30, ge=1, le=1000, description="retryable create failures of one attempt before it fails"
    )
    transcriber_idempotency_window_seconds: float = Field(
        default=3300.0,
        gt=0,
        le=3600,
        description="a create repeated after this long first looks for the transcript (Recall replays for 1 h)",
    )
    transcriber_idempotency_prefix: str = Field(default="recall-pipeline", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    transcriber_app_id: str = Field(default="transcriber", pattern=r"^[A-Za-z0-9._-]{1,100}$")
    transcriber_data_dir: str = Field(
        default="/tmp/recall-transcriber",  # noqa: S108 - scratch space only; the state lives in Kafka
        validation_alias=AliasChoices("transcriber_data_dir", "APP_DATADIR"),
        description="faust's working directory",
    )
    transcriber_web_host: str = "0.0.0.0"
    transcriber_web_port: int = Field(default=6066, ge=1, le=65535)
    transcriber_session_timeout_seconds: float = Field(
        default=15.0, ge=6, le=300, description="how soon a crashed worker's partitions move to another"
    )
    transcriber_auto_offset_reset: str = Field(default="earliest", pattern=r"^(earliest|latest)$")

    @field_validator("transcriber_providers")
    @classmethod
    def _chain_fits_recalls_limit(cls, chain: list[ProviderConfig]) -> list[ProviderConfig]:
        if len(chain) > RECALL_TRANSCRIPT_LIMIT:
            raise ValueError(f"at most {RECALL_TRANSCRIPT_LIMIT} providers (Recall's per-recording transcript limit)")
        return chain
