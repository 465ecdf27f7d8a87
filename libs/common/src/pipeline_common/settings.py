"""Shared configuration pieces (docs/architecture.md, "Configuration"), read from the environment by
pydantic-settings. Each piece is a mixin with fully named fields (``kafka_bootstrap_servers`` reads
``KAFKA_BOOTSTRAP_SERVERS``), so a service builds its own settings class by inheritance and every part names a
variable the same way::

    class IngestSettings(KafkaSettings, WebhookSettings, LoggingSettings): ...
    settings = load_settings(IngestSettings)  # raises ConfigError naming the bad variable

Secrets are ``SecretStr``: they print as ``**********`` in reprs, logs and error messages.
"""

from __future__ import annotations

import re
import ssl
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self, TypeVar

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from pipeline_common import kafka_connection

SettingsT = TypeVar("SettingsT", bound=BaseSettings)


class ConfigError(Exception):
    """The environment does not describe a valid configuration. The message names each bad variable and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {problem}" for problem in problems))


class BaseServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=None, extra="ignore", case_sensitive=False, frozen=True)


def split_csv(value: Any) -> Any:
    """A comma-separated variable as a list (blank items dropped); anything else as given."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


#: A list read from one comma-separated variable.
CsvList = Annotated[list[str], NoDecode, BeforeValidator(split_csv)]


def check_webhook_secrets(secrets: list[SecretStr]) -> list[SecretStr]:
    """At least one secret, each ``whsec_...``; a wrong one is named by its position, never by its value."""
    if not secrets:
        raise ValueError("must hold at least one secret")
    for position, secret in enumerate(secrets, start=1):
        if not secret.get_secret_value().startswith("whsec_"):
            raise ValueError(f"entry {position} does not start with 'whsec_' (copy it from the Recall dashboard)")
    return secrets


#: Standard Webhooks secrets, comma-separated (several during a rotation).
WebhookSecrets = Annotated[list[SecretStr], NoDecode, BeforeValidator(split_csv), AfterValidator(check_webhook_secrets)]


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(BaseServiceSettings):
    """The one connection configuration of every Kafka client here (see docs/configuration.md, "Kafka")."""

    kafka_bootstrap_servers: Annotated[list[str], NoDecode] = Field(
        default=["127.0.0.1:9092"], description="comma-separated host:port list"
    )
    kafka_client_id: str = "recall-pipeline"
    kafka_security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_sasl_jaas_config: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_check_hostname: bool = True
    kafka_topic_replication_factor: int = Field(default=1, ge=1, le=32)
    kafka_create_topics: bool = Field(default=True, description="create missing registry topics at start-up")
    kafka_table_standby_replicas: int = Field(default=0, ge=0, le=8, description="warm Table copies on other replicas")

    @field_validator("kafka_bootstrap_servers", mode="before")
    @classmethod
    def _parse_bootstrap(cls, value: Any) -> Any:
        return split_csv(value)

    @field_validator("kafka_bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, servers: list[str]) -> list[str]:
        if not servers:
            raise ValueError("must name at least one host:port")
        for server in servers:
            host, sep, port = server.rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"{server!r} is not host:port with a port in 1-65535")
        return servers

    @field_validator(
        "kafka_sasl_mechanism",
        "kafka_sasl_username",
        "kafka_sasl_password_file",
        "kafka_ssl_cafile",
        "kafka_ssl_certfile",
        "kafka_ssl_keyfile",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        # An empty variable (a ConfigMap entry left blank) means "not set", not "the file named ''".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _upper_mechanism(cls, value: str | None) -> str | None:
        return value.strip().upper() if value else None

    @model_validator(mode="after")
    def _check_security(self) -> Self:
        protocol = self.kafka_security_protocol.value
        problems = kafka_connection.unused_settings(
            protocol,
            {
                "KAFKA_SASL_MECHANISM": self.kafka_sasl_mechanism is not None,
                "KAFKA_SASL_USERNAME": self.kafka_sasl_username is not None,
                "KAFKA_SASL_PASSWORD": self.kafka_sasl_password is not None,
                "KAFKA_SASL_PASSWORD_FILE": self.kafka_sasl_password_file is not None,
                "KAFKA_SASL_JAAS_CONFIG": self.kafka_sasl_jaas_config is not None,
                "KAFKA_SSL_CAFILE": self.kafka_ssl_cafile is not None,
                "KAFKA_SSL_CERTFILE": self.kafka_ssl_certfile is not None,
                "KAFKA_SSL_KEYFILE": self.kafka_ssl_keyfile is not None,
                "KAFKA_SSL_KEY_PASSWORD": self.kafka_ssl_key_password is not None,
            },
        )
        jaas = self.kafka_sasl_jaas_config.get_secret_value() if self.kafka_sasl_jaas_config else None
        if protocol in kafka_connection.SASL_PROTOCOLS and jaas is not None:
            problems += kafka_connection.jaas_problems(
                jaas, self.kafka_sasl_username, self.kafka_sasl_password is not None, self.kafka_sasl_password_file
            )
            login = kafka_connection.parse_jaas_config(jaas)
            problems += kafka_connection.sasl_problems(
                self.kafka_sasl_mechanism, login.username if login else "?", True, None
            )
        elif protocol in kafka_connection.SASL_PROTOCOLS:
            problems += kafka_connection.sasl_problems(
                self.kafka_sasl_mechanism,
                self.kafka_sasl_username,
                self.kafka_sasl_password is not None,
                self.kafka_sasl_password_file,
            )
        if protocol in kafka_connection.TLS_PROTOCOLS:
            problems += kafka_connection.tls_problems(self._tls_files())
        if problems:
            # One line per problem; describe_errors keeps lines that already name their variable.
            raise ValueError("\n".join(problems))
        return self

    def _tls_files(self) -> kafka_connection.TlsFiles:
        return kafka_connection.TlsFiles(
            cafile=self.kafka_ssl_cafile,
            certfile=self.kafka_ssl_certfile,
            keyfile=self.kafka_ssl_keyfile,
            key_password=self.kafka_ssl_key_password.get_secret_value() if self.kafka_ssl_key_password else None,
            check_hostname=self.kafka_ssl_check_hostname,
        )

    @property
    def kafka_uses_tls(self) -> bool:
        return self.kafka_security_protocol.value in kafka_connection.TLS_PROTOCOLS

    @property
    def kafka_uses_sasl(self) -> bool:
        return self.kafka_security_protocol.value in kafka_connection.SASL_PROTOCOLS

    def kafka_ssl_context(self) -> ssl.SSLContext | None:
        """The TLS context of SSL and SASL_SSL (None otherwise): verifies the broker, presents the client
        certificate when one is configured. Built anew per call, so a rotated certificate file is picked up."""
        return kafka_connection.ssl_context(self._tls_files()) if self.kafka_uses_tls else None

    def _jaas_login(self) -> kafka_connection.JaasLogin | None:
        if self.kafka_sasl_jaas_config is None:
            return None
        return kafka_connection.parse_jaas_config(self.kafka_sasl_jaas_config.get_secret_value())

    @property
    def kafka_sasl_user(self) -> str | None:
        """The SASL user name: KAFKA_SASL_USERNAME, else the one in KAFKA_SASL_JAAS_CONFIG."""
        login = self._jaas_login()
        return login.username if login else self.kafka_sasl_username

    def kafka_sasl_secret(self) -> str | None:
        """The SASL password: KAFKA_SASL_PASSWORD, KAFKA_SASL_PASSWORD_FILE (read now: rotation-friendly) or the one
        in KAFKA_SASL_JAAS_CONFIG."""
        login = self._jaas_login()
        if login is not None:
            return login.password
        if self.kafka_sasl_password is not None:
            return self.kafka_sasl_password.get_secret_value()
        if self.kafka_sasl_password_file is not None:
            return kafka_connection.read_password_file(self.kafka_sasl_password_file)
        return None

    def aiokafka_connection_kwargs(self) -> dict[str, Any]:
        """Connection arguments shared by aiokafka producers, consumers and admin clients."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": ",".join(self.kafka_bootstrap_servers),
            "client_id": self.kafka_client_id,
            "security_protocol": self.kafka_security_protocol.value,
        }
        if self.kafka_uses_tls:
            kwargs["ssl_context"] = self.kafka_ssl_context()
        if self.kafka_uses_sasl:
            kwargs["sasl_mechanism"] = self.kafka_sasl_mechanism
            kwargs["sasl_plain_username"] = self.kafka_sasl_user
            kwargs["sasl_plain_password"] = self.kafka_sasl_secret()
        return kwargs

    def kafka_connection_summary(self) -> dict[str, Any]:
        """What this client connects with, for logs and reports: never the password or the key."""
        summary: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap_servers,
            "security_protocol": self.kafka_security_protocol.value,
        }
        if self.kafka_uses_sasl:
            summary |= {"sasl_mechanism": self.kafka_sasl_mechanism, "sasl_username": self.kafka_sasl_user}
        if self.kafka_uses_tls:
            summary |= {
                "ssl_cafile": str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else "(system trust store)",
                "ssl_check_hostname": self.kafka_ssl_check_hostname,
            }
            if self.kafka_ssl_certfile:
                summary["ssl_certfile"] = str(self.kafka_ssl_certfile)
        return summary


class RecallRegion(StrEnum):
    US_EAST_1 = "us-east-1"
    US_WEST_2 = "us-west-2"
    EU_CENTRAL_1 = "eu-central-1"
    AP_NORTHEAST_1 = "ap-northeast-1"

    @property
    def base_url(self) -> str:
        return f"https://{self.value}.recall.ai"


class RecallApiSettings(BaseServiceSettings):
    recall_api_base_url: str | None = Field(default=None, description="overrides RECALL_REGION when set")
    recall_region: RecallRegion = RecallRegion.US_WEST_2
    recall_api_key: SecretStr | None = None
    recall_api_timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    # Client-side pacing at Recall's documented limits (0 turns one off); per worker process.
    recall_pace_create_per_bot_per_minute: int = Field(default=5, ge=0, le=100_000)
    recall_pace_retrieve_per_minute: int = Field(default=300, ge=0, le=100_000)
    recall_pace_list_per_minute: int = Field(default=60, ge=0, le=100_000)
    recall_pace_delete_per_minute: int = Field(default=300, ge=0, le=100_000)
    #: At Recall's transcripts-per-recording limit, delete our own failed (else oldest done) transcript and go on.
    recall_delete_own_transcripts_at_limit: bool = False

    @field_validator("recall_api_base_url")
    @classmethod
    def _check_base_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL, e.g. https://us-west-2.recall.ai")
        return value.rstrip("/")

    @property
    def recall_base_url(self) -> str:
        return self.recall_api_base_url or self.recall_region.base_url


class WebhookSettings(BaseServiceSettings):
    recall_webhook_secret: WebhookSecrets = Field(description="whsec_... ; several, comma-separated, during a rotation")


class LogFormat(StrEnum):
    JSON = "json"
    CONSOLE = "console"


class LoggingSettings(BaseServiceSettings):
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.JSON

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"}:
            raise ValueError("must be one of CRITICAL, ERROR, WARNING, INFO, DEBUG")
        return level


class TranscriptStoreSettings(BaseServiceSettings):
    transcript_store_url: str = "file:///var/lib/transcripts"

    @field_validator("transcript_store_url")
    @classmethod
    def _check_store_url(cls, value: str) -> str:
        if not value.startswith(("file://", "s3://")):
            raise ValueError("must be file:///absolute/path or s3://bucket/prefix")
        return value


_NAMES_A_VARIABLE = re.compile(r"^[A-Z][A-Z0-9_]*: ")


def describe_errors(error: ValidationError) -> list[str]:
    """One line per problem, naming the environment variable (and the list entry or field inside it, 1-based);
    input values are never echoed (they may be secrets)."""
    problems = []
    for item in error.errors(include_url=False, include_input=False):
        location = list(item["loc"])
        variable = str(location.pop(0)).upper() if location and isinstance(location[0], str) else "(settings)"
        where = ""
        if location and isinstance(location[0], int):
            where = f" entry {int(location.pop(0)) + 1}"
        if location:
            where += f" ({'.'.join(str(part) for part in location)})"
        message = item["msg"].removeprefix("Value error, ")
        if variable == "(settings)" and all(_NAMES_A_VARIABLE.match(line) for line in message.splitlines()):
            problems.extend(message.splitlines())  # a cross-field check that names its variables itself
            continue
        problems.append(f"{variable}{where}: {message}")
    return problems


def load_settings(settings_class: type[SettingsT], **overrides: Any) -> SettingsT:
    """Build settings from the environment, or raise ConfigError with one clear line per bad variable."""
    try:
        return settings_class(**overrides)
    except ValidationError as error:
        raise ConfigError(describe_errors(error)) from None
    except SettingsError as error:
        # pydantic-settings could not even decode the value (a JSON setting that is not JSON).
        match = re.search(r'field "([^"]+)"', str(error))
        variable = match.group(1).upper() if match else "(settings)"
        raise ConfigError([f"{variable}: is not valid JSON"]) from None
