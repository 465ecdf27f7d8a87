"""Checks of the command line's arguments: a bad one is exit 2 with a sentence, before anything connects."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, Final

import click

from pipeline_cli.common import DEFAULT_TIMEOUT

_RECORD_ID: Final = re.compile(r"^[^\s\x00-\x1f\x7f]{1,256}$")
_TOPIC: Final = re.compile(r"^[A-Za-z0-9._-]{1,249}$")
_OFFSET: Final = re.compile(r"^(?:(\d{1,9}):)?(\d{1,19})$")


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
