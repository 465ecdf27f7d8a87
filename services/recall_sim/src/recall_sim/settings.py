"""Simulator settings, from ``RECALL_SIM_*`` environment variables (plus ``LOG_LEVEL`` / ``LOG_FORMAT``).

Everything here is also the initial value of the run-time configuration that tests change through the admin API.
The defaults are for local runs: the API key and webhook secret below are public development values, which is fine
for a simulator that is never deployed to production.
"""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any, Final

from pydantic import AliasGenerator, BeforeValidator, Field, SecretStr, field_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from pipeline_common.settings import LoggingSettings, WebhookSecrets, split_csv
from recall_sim.config import Faults, RuntimeConfig, Simulation

DEV_API_KEY: Final = "recall-sim-api-key"
DEV_WEBHOOK_SECRET: Final = "whsec_" + base64.b64encode(b"recall-sim-development-secret!!!").decode()


def _env_name(field: str) -> str:
    # The simulation's fields are named as the run-time configuration names them; their variables carry the prefix.
    return f"recall_sim_{field}" if field in Simulation.model_fields else field


class SimSettings(LoggingSettings, Simulation):
    model_config = SettingsConfigDict(alias_generator=AliasGenerator(validation_alias=_env_name))

    recall_sim_host: str = "127.0.0.1"
    recall_sim_port: int = Field(default=8081, ge=0, le=65535)
    recall_sim_api_key: SecretStr = SecretStr(DEV_API_KEY)
    recall_sim_webhook_secret: WebhookSecrets = Field(
        default_factory=lambda: [SecretStr(DEV_WEBHOOK_SECRET)],
        description="whsec_...; several, comma-separated, to sign each delivery with each (a rotation)",
    )
    recall_sim_faults: Faults = Field(default_factory=Faults, description="JSON, the body of PUT /admin/faults")
    # The variable is comma-separated; the admin API takes a JSON list.
    webhook_events: Annotated[list[str] | None, NoDecode, BeforeValidator(split_csv)] = None

    @field_validator("recall_sim_faults", mode="before")
    @classmethod
    def _parse_faults(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    def runtime_config(self) -> RuntimeConfig:
        return RuntimeConfig(
            **self.model_dump(include=set(Simulation.model_fields)),
            webhook_secrets=[secret.get_secret_value() for secret in self.recall_sim_webhook_secret],
        )
