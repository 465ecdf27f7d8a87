"""``recall-pipeline reconcile`` and ``recall-pipeline backfill``: the commands, their options and output.

stdout carries the results (in a dry run one line per event it would publish, then the summary); the progress bar
goes to stderr and only on a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import click
from aiokafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from pipeline_cli.common import Failure, recall_api, recall_errors
from pipeline_cli.kafka import KafkaReader, KafkaUnavailable, KafkaWriter, servers
from pipeline_cli.reconcile.decide import SOURCE, Scope, Synthesised, Verdict, next_watermark, query_start
from pipeline_cli.reconcile.options import Common, Moment, common_options, duration_option
from pipeline_cli.reconcile.run import Summary, reconcile_window
from pipeline_cli.reconcile.view import TOPICS, read_view
from pipeline_cli.reconcile.watermark import ReconcilerWatermark, describe, load_watermark, save_watermark
from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.kafka import ensure_topics
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.paging import ListPacer
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import RECONCILER_STATE


@contextmanager
def _progress(label: str) -> Iterator[Any]:
    console = Console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(bar_width=None),
        TextColumn("{task.completed} recordings · {task.fields[published]} published"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield (progress, progress.add_task(label, total=None, published=0))


async def _publisher(writer: KafkaWriter, now: datetime) -> Any:
    async def publish(action: Synthesised) -> None:
        headers = build_headers(
            CloudEventAttributes(id=action.ce_id, source=SOURCE, type=action.event, time=now, subject=action.key)
        )
        await writer.send(action.topic, action.key.encode(), action.body, headers)

    return publish


async def _pass(
    kafka: KafkaSettings,
    scope: Scope,
    *,
    label: str,
    dry_run: bool,
    list_per_minute: float,
    publish_per_minute: float | None,
    window: tuple[datetime, datetime | None] | None,
    overlap: timedelta,
) -> tuple[Summary, dict[str, str]]:
    """window None: reconcile from the stored watermark (and store the next one); else a backfill window."""
    recall_settings, api_key = recall_api("the reconciler lists recordings through Recall's API")
    now = datetime.now(UTC)
    facts: dict[str, str] = {}
    if kafka.kafka_create_topics and not dry_run:
        try:
            await ensure_topics(kafka, [RECONCILER_STATE])
        except (KafkaError, OSError) as error:
            raise KafkaUnavailable(f"cannot reach Kafka at {servers(kafka)}: {error}") from None
    async with KafkaReader(kafka) as reader:
        if window is None and not reader.exists(RECONCILER_STATE.name) and not dry_run:
            raise Failure(f"topic {RECONCILER_STATE.name} does not exist (make kube-topics / KAFKA_CREATE_TOPICS)")
        previous = await load_watermark(reader, scope.key()) if window is None else None
        view = await read_view(reader.snapshot(TOPICS))
    if window is None:
        start = query_start(
            now=now, watermark=previous.watermark if previous else None, overlap=overlap, max_age=scope.max_age
        )
        end = None
        facts["watermark_before"] = describe(previous.watermark if previous else None)
    else:
        start, end = window
    facts["window"] = f"{describe(start)} .. {describe(end) if end else 'now'}"
    list_pacer = ListPacer(list_per_minute)
    publish_pacer = ListPacer(publish_per_minute) if publish_per_minute else None
    async with contextlib.AsyncExitStack() as stack:
        recall = await stack.enter_async_context(
            RecallClient(
                api_key=api_key,
                base_url=recall_settings.recall_base_url,
                timeout=recall_settings.recall_api_timeout_seconds,
            )
        )
        writer = None if dry_run else await stack.enter_async_context(KafkaWriter(kafka))
        publish = await _publisher(writer, now) if writer is not None else None
        with _progress(label) as bar:

            def advance(_recording_id: str, _verdict: Verdict, published: int) -> None:
                if bar is not None:
                    progress, task = bar
                    done = progress.tasks[task].fields["published"] + published
                    progress.update(task, advance=1, published=done)

            summary = await reconcile_window(
                recall,
                view,
                scope,
                created_after=start,
                created_before=end,
                now=now,
                list_pacer=list_pacer,
                publish=publish,
                publish_pacer=publish_pacer,
                on_recording=advance,
            )
        if window is None and writer is not None:
            mark = next_watermark(
                now=now,
                started_from=start,
                previous=previous.watermark if previous else None,
                unsettled=summary.unsettled,
            )
            await save_watermark(
                writer,
                ReconcilerWatermark(
                    scope=scope.key(),
                    watermark=mark,
                    updated_at=now,
                    published=summary.published,
                    seen=summary.seen,
                ),
            )
            facts["watermark_after"] = describe(mark)
    return summary, facts


def execute(work: Any) -> tuple[Summary, dict[str, str]]:
    try:
        with recall_errors("a Recall list call failed"):
            result: tuple[Summary, dict[str, str]] = asyncio.run(work)
    except KafkaUnavailable as error:
        raise Failure(str(error)) from None
    except KafkaError as error:
        raise Failure(f"Kafka error: {error!r}") from None
    return result


def run(
    options: Any,
    common: Common,
    max_age: timedelta,
    *,
    label: str,
    publish_per_minute: float | None,
    window: tuple[datetime, datetime | None] | None,
    overlap: timedelta,
) -> None:
    """One pass of either command over its scope, then its report."""
    scope = Scope(metadata=common.metadata, max_age=max_age, grace=common.grace, pipeline_prefix=common.pipeline_prefix)
    work = _pass(
        options.kafka(),
        scope,
        label=label,
        dry_run=common.dry_run,
        list_per_minute=common.list_per_minute,
        publish_per_minute=publish_per_minute,
        window=window,
        overlap=overlap,
    )
    summary, facts = execute(work)
    report(summary, facts, dry_run=common.dry_run, as_json=common.as_json)


def report(summary: Summary, facts: dict[str, str], *, dry_run: bool, as_json: bool) -> None:
    verb = "would publish" if dry_run else "published"
    if as_json:
        actions = [
            {"event": a.event, "recording_id": a.recording_id, "transcript_id": a.transcript_id, "ce_id": a.ce_id}
            for a in summary.actions
        ]
        click.echo(json.dumps({"dry_run": dry_run, **summary.as_dict(), **facts, "actions": actions}))
        return
    for action in summary.actions:
        target = action.recording_id + (f" transcript {action.transcript_id}" if action.transcript_id else "")
        click.echo(f"{verb} {action.event} {target} (ce_id {action.ce_id})")
    counts = summary.as_dict()
    click.echo(
        f"seen {counts['seen']}, already known {counts['already_known']}, {verb} {counts['published']} "
        f"({counts['recordings_published']} recording.done, {counts['transcripts_published']} transcript events); "
        f"too recent {counts['too_recent']}, not done {counts['not_done']}, out of scope {counts['out_of_scope']}; "
        f"{counts['list_calls']} Recall list calls"
    )
    for name, value in facts.items():
        click.echo(f"{name.replace('_', ' ')}: {value}")


@click.command("reconcile")
@common_options
@duration_option(
    "--max-age",
    "72h",
    "RECONCILE_MAX_AGE",
    "Never look at recordings created longer ago than this (the first run looks back this far).",
)
@duration_option(
    "--overlap",
    "2h",
    "RECONCILE_OVERLAP",
    "Start this long before the stored watermark (a safety margin for clock skew and late status changes).",
)
@click.pass_obj
def reconcile(options: Any, common: Common, max_age: timedelta, overlap: timedelta) -> None:
    """Find recordings done at Recall that the pipeline never heard of (a lost recording.done) or whose finished
    transcript it never received (a lost transcript.done / transcript.failed), and publish the missing events,
    marked ce_source urn:recall-pipeline:reconciler. Walks List Recordings from the watermark stored in
    recall.reconciler.state (minus --overlap) and stores the next one. Run it periodically (the CronJob)."""
    run(options, common, max_age, label="reconciling", publish_per_minute=None, window=None, overlap=overlap)


@click.command("backfill")
@common_options
@click.option("--since", type=Moment(), required=True, help="Recordings created at or after this (UTC if no zone).")
@click.option("--until", type=Moment(), default=None, help="Recordings created before this (default: now).")
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    envvar="BACKFILL_PUBLISH_PER_MINUTE",
    help="At most this many events published a minute, so live recordings never queue behind the backfill.",
)
@click.pass_obj
def backfill(options: Any, common: Common, since: datetime, until: datetime | None, rate: float) -> None:
    """Transcribe existing recordings through the normal pipeline: every done recording created in [--since,
    --until) that the pipeline has no record of gets a synthesised recording.done, paced by --rate. Leaves the
    reconciler's watermark alone. Try --dry-run first."""
    now = datetime.now(UTC)
    if until is not None and until <= since:
        raise click.BadParameter("--until must be after --since", param_hint="--until")
    if since >= now:
        raise click.BadParameter("--since must be in the past", param_hint="--since")
    max_age = now - since + timedelta(minutes=1)
    run(
        options,
        common,
        max_age,
        label="backfilling",
        publish_per_minute=rate,
        window=(since, until),
        overlap=timedelta(0),
    )
