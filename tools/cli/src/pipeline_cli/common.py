"""What every command shares: exit-code exceptions, the Kafka options, running a command's coroutine."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import click
from aiokafka.errors import KafkaError

from pipeline_cli.kafka import KafkaUnavailable
from pipeline_common.recall.errors import RecallApiError, RecallForbidden, RecallInvalidArgument, RecallUnauthorized
from pipeline_common.settings import ConfigError, KafkaSettings, RecallApiSettings, load_settings

T = TypeVar("T")

DEFAULT_TIMEOUT: Final = 30.0
EPILOG: Final = (
    "Exit codes: 0 done; 1 nothing found or the work failed; 2 usage or configuration error. "
    "Kafka settings come from KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*); "
    "Recall settings from RECALL_API_KEY and RECALL_API_BASE_URL or RECALL_REGION."
)


class Failure(click.ClickException):
    """Nothing found, or the work failed: exit 1."""

    exit_code = 1


class ConfigProblem(click.ClickException):
    """The environment or an argument names something that cannot work: exit 2."""

    exit_code = 2


@contextmanager
def recall_errors(what_failed: str, *, key_context: str = "") -> Iterator[None]:
    """Recall's refusals as exit codes: a bad argument or a rejected key is a configuration problem (2), any other
    failed call a failure (1), said as ``what_failed (kind): error``."""
    try:
        yield
    except RecallInvalidArgument as error:
        raise ConfigProblem(str(error)) from None
    except (RecallUnauthorized, RecallForbidden) as error:
        raise ConfigProblem(f"Recall rejected RECALL_API_KEY{key_context}: {error}") from None
    except RecallApiError as error:
        raise Failure(f"{what_failed} ({error.kind.value}): {error}") from None


def recall_api(needed_for: str) -> tuple[RecallApiSettings, str]:
    """Recall's API settings and the key; ConfigProblem (exit 2) when they do not load or the key is missing, saying
    what ``needed_for`` it."""
    try:
        settings = load_settings(RecallApiSettings)
    except ConfigError as error:
        raise ConfigProblem(str(error)) from None
    key = settings.recall_api_key.get_secret_value().strip() if settings.recall_api_key else ""
    if not key:
        raise ConfigProblem(f"RECALL_API_KEY is not set: {needed_for}")
    return settings, key


@dataclass(frozen=True, slots=True)
class Options:
    bootstrap_servers: str | None

    def kafka(self) -> KafkaSettings:
        overrides = {"kafka_bootstrap_servers": self.bootstrap_servers} if self.bootstrap_servers else {}
        try:
            return load_settings(KafkaSettings, **overrides)
        except ConfigError as error:
            raise ConfigProblem(str(error)) from None


def run(work: Coroutine[Any, Any, T]) -> T:
    """Run a command's coroutine, turning Kafka trouble into exit 1 with a sentence."""
    try:
        return asyncio.run(work)
    except KafkaUnavailable as error:
        raise Failure(str(error)) from None
    except KafkaError as error:
        raise Failure(f"Kafka error: {error!r}") from None


def warn(message: str) -> None:
    click.echo(message, err=True)


def within(seconds: float, work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    async def bounded() -> T:
        async with asyncio.timeout(seconds):
            return await work

    return bounded()
