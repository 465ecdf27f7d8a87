"""The options ``reconcile`` and ``backfill`` share: durations, dates, ``KEY=VALUE`` metadata, and their environment
variables (docs/configuration.md)."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import click

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS: Final = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 90s, 30m, 72h, 7d)")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


class Duration(click.ParamType):
    name = "DURATION"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as error:
            self.fail(str(error), param, ctx)


class Moment(click.ParamType):
    name = "DATE[THH:MM[:SS]][Z]"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            self.fail(f"{value!r} is not an ISO 8601 date or date-time (e.g. 2026-11-01)", param, ctx)
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


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
        click.option(
            "--grace",
            type=Duration(),
            default="10m",
            show_default=True,
            envvar="RECONCILE_GRACE",
            help="Leave a recording or transcript finished less than this long ago to Recall's own webhook.",
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
