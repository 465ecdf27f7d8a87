"""What every command shares: exit-code exceptions, the Kafka options, running a command's coroutine, and the
checks of arguments (a bad one is exit 2 with a sentence, before anything connects)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import click
from aiokafka.errors import KafkaError

from pipeline_cli.kafka import KafkaUnavailable
from pipeline_common.settings import (
    ConfigError,
    KafkaSettings,
    load_settings,
)
from pipeline_common.topics import (
    RECORDING_EVENTS,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
)

T = TypeVar("T")

#: The topics a recording's lifecycle crosses, in the order they are normally written.
LIFECYCLE_TOPICS: Final = (
    RECORDING_EVENTS.name,
    TRANSCRIPT_EVENTS.name,
    TRANSCRIPTS_READY.name,
    TRANSCRIPTS_FAILED.name,
)
DEFAULT_PROVIDER: Final = {"recallai_async": {"language_code": "auto"}}
DEFAULT_TIMEOUT: Final = 30.0
_RECORD_ID: Final = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
_TOPIC: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_OFFSET: Final = re.compile(r"^(?:(\d{1,9}):)?(\d{1,19})$")
EPILOG: Final = (
    "Exit codes: 0 done; 1 nothing found or the work failed; 2 usage or configuration error. "
    "Kafka settings come from KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*); Recall settings "
    "from RECALL_API_KEY and RECALL_API_BASE_URL or RECALL_REGION."
)


class Failure(click.ClickException):
    """Nothing found, or the work failed: exit 1."""

    exit_code = 1


class ConfigProblem(click.ClickException):
    """The environment or an argument names something that cannot work: exit 2."""

    exit_code = 2


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


# ------------------------------------------------------------------------------------------------ checks
def check_recording_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _RECORD_ID.match(value):
        raise click.BadParameter("must be 1-256 characters without spaces or control characters", ctx, param)
    return value


def check_topic(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _TOPIC.match(value):
        raise click.BadParameter(f"{value!r} is not a Kafka topic name (letters, digits, '.', '_', '-')", ctx, param)
    return value


def check_keys(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        check_recording_id(ctx, param, value)
    return tuple(values)


def check_offsets(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> tuple[tuple[int | None, int], ...]:
    parsed = []
    for value in values:
        match = _OFFSET.match(value.strip())
        if not match:
            raise click.BadParameter(f"{value!r} is not OFFSET or PARTITION:OFFSET (non-negative integers)", ctx, param)
        partition, offset = match.groups()
        parsed.append((int(partition) if partition is not None else None, int(offset)))
    return tuple(parsed)


def timeout_option(help_text: str, default: float | None = DEFAULT_TIMEOUT) -> Callable[[Any], Any]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help=help_text,
    )
