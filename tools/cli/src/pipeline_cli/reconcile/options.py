"""The options ``reconcile`` and ``backfill`` share: durations, dates, ``KEY=VALUE`` metadata, and their environment
variables (docs/configuration.md)."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, TypeVar

import click

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
T = TypeVar("T")


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 30m, 72h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def parse_moment(text: str) -> datetime:
    """An ISO 8601 date or date-time; UTC when it names no zone."""
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01)") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class _Parsed(click.ParamType, Generic[T]):
    """An option's value parsed from its text (the parser's ValueError is the message), or one given already
    parsed (a default)."""

    def __init__(self, kind: type[T], parse: Callable[[str], T]) -> None:
        self.kind = kind
        self.parse = parse

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> T:
        if isinstance(value, self.kind):
            return value
        try:
            return self.parse(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class Duration(_Parsed[timedelta]):
    name = "DURATION"

    def __init__(self) -> None:
        super().__init__(timedelta, parse_duration)


class Moment(_Parsed[datetime]):
    name = "DATE[THH:MM[:SS]][Z]"

    def __init__(self) -> None:
        super().__init__(datetime, parse_moment)


def duration_option(flag: str, default: str, envvar: str, help: str) -> Callable[[Any], Any]:
    """An option taking a duration (``90s``, ``30m``, ``72h``, ``7d``), from ``envvar`` when not given."""
    return click.option(flag, type=Duration(), default=default, show_default=True, envvar=envvar, help=help)


def _metadata(ctx: click.Context, param: click.Parameter, values: Any) -> dict[str, str]:
    pairs: dict[str, str] = {}
    items: list[str] = []
    for value in values or ():
        items.extend(part for part in str(value).split(",") if part.strip())
    for item in items:
        key, sep, val = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", ctx, param)
        pairs[key.strip()] = val.strip()
    return pairs


@dataclass(frozen=True, slots=True)
class Common:
    """The options every reconcile command takes (:func:`common_options`), handed to the command as one value."""

    dry_run: bool
    metadata: dict[str, str]
    list_per_minute: float
    grace: timedelta
    pipeline_prefix: str
    as_json: bool


def common_options(command: Any) -> Any:
    """Add the common options; the command receives them as one :class:`Common` (after ``click.pass_obj``'s)."""
    options = [
        click.option("--dry-run", is_flag=True, help="Decide and list what would be published; publish nothing."),
        click.option(
            "--metadata",
            "metadata",
            multiple=True,
            callback=_metadata,
            envvar="RECONCILE_METADATA",
            metavar="KEY=VALUE[,...]",
            help="Only recordings whose metadata has these pairs (repeatable; env RECONCILE_METADATA).",
        ),
        click.option(
            "--list-per-minute",
            type=click.FloatRange(min=0, min_open=True, max=60),
            default=50.0,
            show_default=True,
            envvar="RECONCILE_RECALL_LIST_PER_MINUTE",
            help="Recall list calls a minute (Recall allows about 60; leave room for the services).",
        ),
        duration_option(
            "--grace",
            "10m",
            "RECONCILE_GRACE",
            "Leave a recording or transcript finished less than this long ago to Recall's own webhook.",
        ),
        click.option(
            "--pipeline-prefix",
            default="recall-pipeline",
            show_default=True,
            envvar="TRANSCRIBER_IDEMPOTENCY_PREFIX",
            help="The transcriber's prefix: only transcripts it created (metadata.pipeline) are reconciled.",
        ),
        click.option("--json", "as_json", is_flag=True, help="Print the summary (and dry-run actions) as JSON."),
    ]

    @functools.wraps(command)
    def bundled(
        *args: Any,
        dry_run: bool,
        metadata: dict[str, str],
        list_per_minute: float,
        grace: timedelta,
        pipeline_prefix: str,
        as_json: bool,
        **rest: Any,
    ) -> Any:
        common = Common(dry_run, metadata, list_per_minute, grace, pipeline_prefix, as_json)
        return command(*args, common, **rest)

    wrapped: Any = bundled
    for option in reversed(options):
        wrapped = option(wrapped)
    return wrapped
