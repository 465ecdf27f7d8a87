"""Run-time configuration and fault injection, changeable through the admin API while the simulator runs."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Recall's (Svix's) schedule: each entry is the wait before that attempt, after the previous one failed.
RETRY_SCHEDULE_SECONDS: Final = (0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)


class Endpoint(StrEnum):
    CREATE_TRANSCRIPT = "create_transcript"
    RETRIEVE_TRANSCRIPT = "retrieve_transcript"
    LIST_TRANSCRIPTS = "list_transcripts"
    DELETE_TRANSCRIPT = "delete_transcript"
    RETRIEVE_RECORDING = "retrieve_recording"
    DOWNLOAD = "download"
    LIST_RECORDINGS = "list_recordings"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EndpointFault(_Strict):
    error_rate: float = Field(default=0.0, ge=0, le=1, description="share of calls answered with `status`")
    status: int = Field(default=503, ge=400, le=599)
    retry_after: float | None = Field(default=None, ge=0, description="Retry-After on injected errors (429: 1)")
    fail_next: int = Field(default=0, ge=0, description="the next N calls fail with `status` (deterministic)")
    latency_seconds: float = Field(default=0.0, ge=0, le=600, description="added before answering")
    drop_rate: float = Field(default=0.0, ge=0, le=1, description="processed, then the connection is closed")
    drop_next: int = Field(default=0, ge=0)
    garble_rate: float = Field(default=0.0, ge=0, le=1, description="processed, then a 200 with an HTML body")
    garble_next: int = Field(default=0, ge=0)


class ProviderFailure(_Strict):
    sub_code: str = "provider_connection_failed"
    rate: float = Field(default=1.0, ge=0, le=1)


class WebhookFaults(_Strict):
    duplicate_rate: float = Field(default=0.0, ge=0, le=1, description="deliver again after a 2xx, same webhook-id")
    out_of_order_rate: float = Field(default=0.0, ge=0, le=1, description="hold a delivery back so later ones pass")
    out_of_order_delay_seconds: float = Field(default=1.0, ge=0, le=3600)
    lose_recording_rate: float = Field(
        default=0.0, ge=0, le=1, description="share of recordings whose webhooks are never delivered (while set)"
    )


class Faults(_Strict):
    endpoints: dict[Endpoint, EndpointFault] = Field(default_factory=dict)
    provider_failures: dict[str, ProviderFailure] = Field(
        default_factory=dict, description="provider name -> transcripts by it end in transcript.failed"
    )
    webhooks: WebhookFaults = Field(default_factory=WebhookFaults)

    @field_validator("provider_failures", mode="before")
    @classmethod
    def _sub_code_shorthand(cls, value: object) -> object:
        # {"deepgram_async": "provider_connection_failed"} is short for {"deepgram_async": {"sub_code": ...}}
        if isinstance(value, dict):
            return {name: {"sub_code": item} if isinstance(item, str) else item for name, item in value.items()}
        return value


class Simulation(BaseModel):
    """What the simulator does, read at start-up from ``RECALL_SIM_<NAME>`` and changed later through the admin API."""

    webhook_url: str | None = None
    public_url: str | None = Field(
        default=None, description="base of download and pagination URLs; default: the URL the request came to"
    )
    transcript_delay_seconds: float | None = Field(default=1.0, ge=0, description="null: finish only via admin")
    download_url_ttl_seconds: float = Field(default=3600.0, gt=0)
    time_scale: float = Field(default=1.0, ge=0, description="multiplies Recall's webhook retry schedule")
    webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    webhook_legacy_headers: bool = False
    webhook_events: list[str] | None = None
    processing_webhooks: bool = True
    transcript_limit: int = Field(default=10, ge=1)
    idempotency_ttl_seconds: float = Field(default=3600.0, gt=0)
    create_per_bot_per_window: int | None = Field(default=None, ge=1)
    retrieve_per_window: int | None = Field(default=None, ge=1)
    list_per_window: int | None = Field(default=None, ge=1)
    rate_window_seconds: float = Field(default=60.0, gt=0)
    page_size: int = Field(default=50, ge=1, le=1000)
    transcript_words: int = Field(default=400, ge=0, le=5_000_000)
    transcript_bytes: int | None = Field(default=None, ge=0, le=500_000_000)
    empty_transcript_ratio: float = Field(default=0.0, ge=0, le=1)
    download_redirect_ratio: float = Field(
        default=0.0, ge=0, le=1, description="share of download URLs on the API host (/api/v1/download/...?token=)"
    )
    bot_events: bool = Field(default=False, description="send Recall's legacy bot.status_change (data.bot_id)")
    seed: int = 0


class RuntimeConfig(Simulation):
    model_config = ConfigDict(extra="forbid")

    webhook_secrets: list[str] = Field(min_length=1)
    download_chunked: bool = Field(
        default=False, description="serve downloads chunked, without Content-Length (S3 never does; proxies may)"
    )

    @field_validator("webhook_secrets")
    @classmethod
    def _check_secrets(cls, secrets: list[str]) -> list[str]:
        for position, secret in enumerate(secrets, 1):
            if not secret.startswith("whsec_"):
                raise ValueError(f"entry {position} does not start with 'whsec_'")
        return secrets

    def public(self) -> dict[str, object]:
        """What GET /admin/config shows: everything but the secrets' values."""
        shown = self.model_dump(mode="json", exclude={"webhook_secrets"})
        shown["webhook_secrets"] = len(self.webhook_secrets)
        return shown
