"""Simulator settings, from ``RECALL_SIM_*`` environment variables (plus ``LOG_LEVEL`` / ``LOG_FORMAT``).

Everything here is also the initial value of the run-time configuration that tests change through the admin API.
The defaults are for local runs: the API key and webhook secret below are public development values, which is fine
for a simulator that is never deployed to production.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Final

from pydantic import BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from pipeline_common.settings import LoggingSettings, WebhookSecrets, split_csv
from recall_sim.config import Faults, RuntimeConfig

DEV_API_KEY: Final = "recall-sim-api-key"
DEV_WEBHOOK_SECRET: Final = "whsec_" + base64.b64encode(b"recall-sim-development-secret!!!").decode()


class SimSettings(LoggingSettings):
    recall_sim_host: str = "127.0.0.1"
    recall_sim_port: int = Field(default=8081, ge=0, le=65535)
    recall_sim_api_key: SecretStr = SecretStr(DEV_API_KEY)
    recall_sim_webhook_url: str | None = None
    recall_sim_webhook_secret: WebhookSecrets = Field(
        default_factory=lambda: [SecretStr(DEV_WEBHOOK_SECRET)],
        description="whsec_...; several, comma-separated, to sign each delivery with each (a rotation)",
    )
    recall_sim_public_url: str | None = Field(
        default=None, description="base of download and pagination URLs; default: the URL the request came to"
    )
    recall_sim_transcript_delay_seconds: float | None = Field(default=1.0, ge=0)
    recall_sim_download_url_ttl_seconds: float = Field(default=3600.0, gt=0)
    recall_sim_time_scale: float = Field(default=1.0, ge=0, description="multiplies Recall's webhook retry schedule")
    recall_sim_webhook_timeout_seconds: float = Field(default=15.0, gt=0)
    recall_sim_webhook_legacy_headers: bool = False
    recall_sim_webhook_events: Annotated[list[str] | None, NoDecode, BeforeValidator(split_csv)] = None
    recall_sim_processing_webhooks: bool = True
    recall_sim_transcript_limit: int = Field(default=10, ge=1)
    recall_sim_idempotency_ttl_seconds: float = Field(default=3600.0, gt=0)
    recall_sim_create_per_bot_per_window: int | None = Field(default=None, ge=1)
    recall_sim_retrieve_per_window: int | None = Field(default=None, ge=1)
    recall_sim_list_per_window: int | None = Field(default=None, ge=1)
    recall_sim_rate_window_seconds: float = Field(default=60.0, gt=0)
    recall_sim_page_size: int = Field(default=50, ge=1, le=1000)
    recall_sim_transcript_words: int = Field(default=400, ge=0)
    recall_sim_transcript_bytes: int | None = Field(default=None, ge=0)
    recall_sim_empty_transcript_ratio: float = Field(default=0.0, ge=0, le=1)
    recall_sim_download_redirect_ratio: float = Field(
        default=0.0, ge=0, le=1, description="share of download URLs on the API host that redirect to storage"
    )
    recall_sim_bot_events: bool = Field(default=False, description="also send legacy bot.status_change events")
    recall_sim_seed: int = 0
    recall_sim_faults: Faults = Field(default_factory=Faults, description="JSON, the body of PUT /admin/faults")

    @field_validator("recall_sim_faults", mode="before")
    @classmethod
    def _parse_faults(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig(
            webhook_url=self.recall_sim_webhook_url,
            webhook_secrets=[secret.get_secret_value() for secret in self.recall_sim_webhook_secret],
            public_url=self.recall_sim_public_url,
            transcript_delay_seconds=self.recall_sim_transcript_delay_seconds,
            download_url_ttl_seconds=self.recall_sim_download_url_ttl_seconds,
            time_scale=self.recall_sim_time_scale,
            webhook_timeout_seconds=self.recall_sim_webhook_timeout_seconds,
            webhook_legacy_headers=self.recall_sim_webhook_legacy_headers,
            webhook_events=self.recall_sim_webhook_events,
            processing_webhooks=self.recall_sim_processing_webhooks,
            transcript_limit=self.recall_sim_transcript_limit,
            download_redirect_ratio=self.recall_sim_download_redirect_ratio,
            bot_events=self.recall_sim_bot_events,
            idempotency_ttl_seconds=self.recall_sim_idempotency_ttl_seconds,
            create_per_bot_per_window=self.recall_sim_create_per_bot_per_window,
            retrieve_per_window=self.recall_sim_retrieve_per_window,
            list_per_window=self.recall_sim_list_per_window,
            rate_window_seconds=self.recall_sim_rate_window_seconds,
            page_size=self.recall_sim_page_size,
            transcript_words=self.recall_sim_transcript_words,
            transcript_bytes=self.recall_sim_transcript_bytes,
            empty_transcript_ratio=self.recall_sim_empty_transcript_ratio,
            seed=self.recall_sim_seed,
        )
