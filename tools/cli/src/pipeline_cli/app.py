"""``recall-pipeline``: look at and repair the pipeline from a terminal.

Exit codes: 0 done; 1 nothing found, or the work failed (Kafka or Recall unreachable or refusing, a deadline
passed, some records could not be replayed); 2 a usage or configuration error (bad option, unknown topic, malformed
key or offset, missing or invalid environment variable). Errors go to stderr; stdout carries only results.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import click
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from pipeline_cli import render
from pipeline_cli.kafka import KafkaReader, KafkaUnavailable, KafkaWriter, Record, servers
from pipeline_common.contracts import TranscriptFailed, TranscriptReady
from pipeline_common.dlq import source_topic, strip_dlq_headers
from pipeline_common.logging import configure_logging
from pipeline_common.recall._base import describe_validation_error
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import RecallApiError, RecallForbidden, RecallInvalidArgument, RecallUnauthorized
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.settings import (
    ConfigError,
    KafkaSettings,
    LogFormat,
    LoggingSettings,
    RecallApiSettings,
    load_settings,
)
from pipeline_common.topics import (
    DLQ_SERVICES,
    RECORDING_EVENTS,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
    dlq_topic,
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
    "Kafka settings come from KAFKA_BOOTSTRAP_SERVERS (and KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_*, KAFKA_SSL_*); "
    "Recall settings from RECALL_API_KEY and RECALL_API_BASE_URL or RECALL_REGION."
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
def _recording_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not _RECORD_ID.match(value):
        raise click.BadParameter("must be 1-256 characters without spaces or control characters", ctx, param)
    return value


def _topic(ctx: click.Context, param: click.Parameter, value: str) -> str:
    if not _TOPIC.match(value):
        raise click.BadParameter(f"{value!r} is not a Kafka topic name (letters, digits, '.', '_', '-')", ctx, param)
    return value


def _keys(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        _recording_id(ctx, param, value)
    return tuple(values)


def _offsets(ctx: click.Context, param: click.Parameter, values: Sequence[str]) -> tuple[tuple[int | None, int], ...]:
    parsed = []
    for value in values:
        match = _OFFSET.match(value.strip())
        if not match:
            raise click.BadParameter(f"{value!r} is not OFFSET or PARTITION:OFFSET (non-negative integers)", ctx, param)
        partition, offset = match.groups()
        parsed.append((int(partition) if partition is not None else None, int(offset)))
    return tuple(parsed)


def _positive_seconds(help_text: str, default: float | None = DEFAULT_TIMEOUT) -> Callable[[Any], Any]:
    return click.option(
        "--timeout",
        type=click.FloatRange(min=0, min_open=True),
        default=default,
        show_default=default is not None,
        metavar="SECONDS",
        help=help_text,
    )


# ------------------------------------------------------------------------------------------------- root
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}, epilog=EPILOG)
@click.option(
    "--bootstrap-servers",
    "-b",
    metavar="HOST:PORT[,...]",
    help="Kafka brokers; default $KAFKA_BOOTSTRAP_SERVERS, else 127.0.0.1:9092.",
)
@click.option("--verbose", "-v", is_flag=True, help="Log what the Kafka and Recall clients do (to stderr).")
@click.version_option(package_name="recall-pipeline-cli", prog_name="recall-pipeline")
@click.pass_context
def cli(ctx: click.Context, bootstrap_servers: str | None, verbose: bool) -> None:
    """Operate the Recall.ai transcription pipeline: follow a recording across the topics, ask Recall for a new
    transcript, replay dead letters, watch transcripts.ready."""
    if verbose:
        _logging(verbose=True)
    ctx.obj = Options(bootstrap_servers=bootstrap_servers)


# ------------------------------------------------------------------------------------------------- recording
@cli.group(epilog=EPILOG)
def recording() -> None:
    """A recording's lifecycle: show it, or re-request its transcript."""


@recording.command("show", epilog=EPILOG)
@click.argument("recording_id", callback=_recording_id)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    callback=lambda ctx, param, values: tuple(_topic(ctx, param, value) for value in values),
    metavar="TOPIC",
    help="Read this topic instead of the lifecycle topics (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a readable line.")
@_positive_seconds("Give up reading after this long.")
@click.pass_obj
def recording_show(options: Options, recording_id: str, topics: tuple[str, ...], as_json: bool, timeout: float) -> None:
    """Every event keyed by RECORDING_ID, in time order, read from the beginning of recall.recording.events,
    recall.transcript.events, transcripts.ready and transcripts.failed (a snapshot: records written while it reads
    are not waited for). Exit 1 when there are none."""
    settings = options.kafka()
    wanted = topics or LIFECYCLE_TOPICS
    found: list[Record] = []
    scanned: list[str] = []

    async def read() -> None:
        async with KafkaReader(settings) as kafka:
            missing = [topic for topic in wanted if not kafka.exists(topic)]
            if missing and topics:
                raise ConfigProblem(f"unknown topic {missing[0]!r}: no such topic on {servers(settings)}")
            for topic in missing:
                warn(f"note: {topic} does not exist on {servers(settings)} yet; skipped")
            present = [topic for topic in wanted if topic not in missing]
            scanned.extend(present)
            key = recording_id.encode()
            async for record in kafka.snapshot(present):
                if record.key == key:
                    found.append(record)

    timed_out = False
    try:
        run(within(timeout, read()))
    except TimeoutError:
        timed_out = True
    order = {topic: index for index, topic in enumerate(wanted)}
    found.sort(key=lambda r: (r.timestamp_ms, order.get(r.topic, len(order)), r.partition, r.offset))
    width = max((len(topic) for topic in wanted), default=24)
    for record in found:
        click.echo(render.as_json(record) if as_json else render.describe(record, topic_width=width))
    if found and not as_json:
        click.echo(f"status: {_status(found)}")
    if timed_out:
        raise Failure(
            f"reading {', '.join(scanned) or 'the topics'} did not finish within {timeout:g}s; "
            f"{len(found)} event(s) found so far (raise --timeout)"
        )
    if not found:
        raise Failure(f"no events for recording {recording_id!r} on {', '.join(scanned) or 'any topic'}")
    warn(f"{len(found)} event(s) for recording {recording_id} on {', '.join(scanned)}")


def _status(records: Sequence[Record]) -> str:
    """Where the recording stands: its latest outcome, else its latest event."""
    outcomes = [r for r in records if r.topic in (TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name) and r.value]
    if outcomes:
        last = outcomes[-1]
        assert last.value is not None
        try:
            if last.topic == TRANSCRIPTS_READY.name:
                ready = TranscriptReady.model_validate_json(last.value)
                return f"ready (transcript {ready.transcript_id} by {ready.provider}, stored at {ready.raw.uri})"
            failed = TranscriptFailed.model_validate_json(last.value)
            return f"failed ({failed.reason.value} after {len(failed.attempts)} attempt(s))"
        except ValidationError:
            return f"unknown (the last {last.topic} event is not valid)"
    last = records[-1]
    return f"in progress (last event: {last.header('ce_type') or last.topic})"


def _provider(ctx: click.Context, param: click.Parameter, value: str | None) -> ProviderConfig:
    source = "--provider"
    if value is None:
        chain = os.environ.get("TRANSCRIBER_PROVIDERS", "").strip()
        if not chain:
            return ProviderConfig.model_validate(DEFAULT_PROVIDER)
        source = "TRANSCRIBER_PROVIDERS"
        try:
            providers = json.loads(chain)
        except ValueError:
            raise ConfigProblem("TRANSCRIBER_PROVIDERS is not valid JSON (a list of provider objects)") from None
        if not isinstance(providers, list) or not providers:
            raise ConfigProblem("TRANSCRIBER_PROVIDERS must be a non-empty JSON list of provider objects")
        candidate: Any = providers[0]
    else:
        try:
            candidate = json.loads(value)
        except ValueError as error:
            raise click.BadParameter(f"is not valid JSON ({error})", ctx, param) from None
    try:
        return ProviderConfig.model_validate(candidate)
    except ValidationError as error:
        message = describe_validation_error(error, "provider configuration")
        if source == "--provider":
            raise click.BadParameter(message, ctx, param) from None
        raise ConfigProblem(f"TRANSCRIBER_PROVIDERS: {message}") from None


@recording.command("retranscribe", epilog=EPILOG)
@click.argument("recording_id", callback=_recording_id)
@click.option(
    "--provider",
    callback=_provider,
    metavar="JSON",
    help='Provider configuration, e.g. \'{"deepgram_async": {"model": "nova-3", "language": "multi"}}\'. '
    'Default: the first of $TRANSCRIBER_PROVIDERS, else {"recallai_async": {"language_code": "auto"}}.',
)
def recording_retranscribe(recording_id: str, provider: ProviderConfig) -> None:
    """Ask Recall for a new transcript of RECORDING_ID (Create Async Transcript, with a fresh Idempotency-Key) and
    print its id. Its transcript.done reaches the fetcher like any other, which stores it and announces
    transcripts.ready. Needs RECALL_API_KEY. Recall allows at most 10 transcripts per recording, and each costs."""
    try:
        settings = load_settings(RecallApiSettings)
    except ConfigError as error:
        raise ConfigProblem(str(error)) from None
    api_key = settings.recall_api_key.get_secret_value().strip() if settings.recall_api_key else ""
    if not api_key:
        raise ConfigProblem(
            "RECALL_API_KEY is not set: retranscribe calls Recall's Create Async Transcript and needs the API key"
        )
    idempotency_key = f"recall-pipeline-cli-{uuid.uuid4().hex}"

    async def create() -> str:
        async with RecallClient(
            api_key=api_key, base_url=settings.recall_base_url, timeout=settings.recall_api_timeout_seconds
        ) as recall:
            artifact = await recall.create_transcript(
                recording_id,
                provider,
                metadata={"requested_by": "recall-pipeline-cli"},
                idempotency_key=idempotency_key,
            )
        return artifact.id

    try:
        transcript_id = asyncio.run(create())
    except RecallInvalidArgument as error:
        raise ConfigProblem(str(error)) from None
    except (RecallUnauthorized, RecallForbidden) as error:
        raise ConfigProblem(f"Recall rejected RECALL_API_KEY at {settings.recall_base_url}: {error}") from None
    except RecallApiError as error:
        raise Failure(f"Recall did not create a transcript ({error.kind.value}): {error}") from None
    click.echo(transcript_id)
    warn(
        f"requested transcript {transcript_id} of recording {recording_id} with {provider.provider_name} "
        f"at {settings.recall_base_url} (Idempotency-Key {idempotency_key})"
    )


# ------------------------------------------------------------------------------------------------------ dlq
@cli.group(epilog=EPILOG)
def dlq() -> None:
    """Dead-letter queues (<service>.dlq): send records back to the topic they came from."""


@dlq.command("replay", epilog=EPILOG)
@click.argument("topic", callback=_topic)
@click.option("--all", "replay_all", is_flag=True, help="Replay every record of TOPIC.")
@click.option("--key", "keys", multiple=True, callback=_keys, metavar="KEY", help="Replay the records with this key.")
@click.option(
    "--offset",
    "offsets",
    multiple=True,
    callback=_offsets,
    metavar="N|PARTITION:N",
    help="Replay the record at this offset (of any partition, or of PARTITION).",
)
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; send nothing.")
@_positive_seconds("Give up after this long.")
@click.pass_obj
def dlq_replay(
    options: Options,
    topic: str,
    replay_all: bool,
    keys: tuple[str, ...],
    offsets: tuple[tuple[int | None, int], ...],
    dry_run: bool,
    timeout: float,
) -> None:
    """Send dead letters of TOPIC back to their dlq-source-topic with their original key, value and headers (the
    dlq-* headers removed). Choose them with --all, or with --key and --offset (repeatable; a record matching any of
    them is replayed). The consumers are idempotent, so replaying a record twice is safe. Exit 1 when nothing
    matched or a record could not be replayed."""
    if replay_all and (keys or offsets):
        raise click.UsageError("--all replays everything: do not combine it with --key or --offset")
    if not (replay_all or keys or offsets):
        raise click.UsageError("say which records to replay: --all, --key KEY or --offset N (see --help)")
    settings = options.kafka()
    wanted_keys = {key.encode() for key in keys}
    outcome = {"read": 0, "selected": 0, "replayed": 0, "skipped": 0}
    seen_offsets: set[tuple[int | None, int]] = set()
    seen_keys: set[bytes] = set()

    def selected(record: Record) -> bool:
        if replay_all:
            return True
        hit = False
        if record.key is not None and record.key in wanted_keys:
            seen_keys.add(record.key)
            hit = True
        for partition, offset in offsets:
            if offset == record.offset and partition in (None, record.partition):
                seen_offsets.add((partition, offset))
                hit = True
        return hit

    async def replay() -> None:
        async with KafkaReader(settings) as kafka:
            if not kafka.exists(topic):
                known = ", ".join(dlq_topic(service).name for service in DLQ_SERVICES)
                raise ConfigProblem(f"unknown topic {topic!r}: no such topic on {servers(settings)} (DLQs: {known})")
            chosen: list[tuple[Record, str]] = []
            async for record in kafka.snapshot([topic]):
                outcome["read"] += 1
                if not selected(record):
                    continue
                outcome["selected"] += 1
                where = f"{record.topic} {record.partition}@{record.offset} key={record.key_text}"
                target = source_topic(record.headers)
                if target is None:
                    warn(f"skipped {where}: no dlq-source-topic header (not a dead letter?)")
                    outcome["skipped"] += 1
                elif not kafka.exists(target):
                    warn(f"skipped {where}: its source topic {target!r} does not exist on {servers(settings)}")
                    outcome["skipped"] += 1
                else:
                    chosen.append((record, target))
        if dry_run:
            for record, target in chosen:
                click.echo(f"would replay {_where(record)} -> {target}  ({_reason(record)})")
            return
        if not chosen:
            return
        async with KafkaWriter(settings) as writer:
            for record, target in chosen:
                partition, offset = await writer.send(
                    target, record.key, record.value, strip_dlq_headers(record.headers)
                )
                outcome["replayed"] += 1
                click.echo(f"replayed {_where(record)} -> {target} {partition}@{offset}  ({_reason(record)})")

    try:
        run(within(timeout, replay()))
    except TimeoutError:
        raise Failure(f"replaying from {topic} did not finish within {timeout:g}s ({outcome})") from None
    for partition, offset in sorted(set(offsets) - seen_offsets, key=lambda po: (po[0] or 0, po[1])):
        warn(f"note: no record at offset {offset}{f' of partition {partition}' if partition is not None else ''}")
    for key in sorted(wanted_keys - seen_keys):
        warn(f"note: no record with key {key.decode()!r}")
    if not outcome["selected"]:
        raise Failure(f"nothing matched in {topic} ({outcome['read']} record(s) read)")
    verb = "would replay" if dry_run else "replayed"
    count = outcome["selected"] - outcome["skipped"] if dry_run else outcome["replayed"]
    warn(f"{verb} {count} of {outcome['selected']} matching record(s) from {topic} ({outcome['skipped']} skipped)")
    if outcome["skipped"]:
        raise Failure(f"{outcome['skipped']} matching record(s) could not be replayed (see above)")


def _where(record: Record) -> str:
    return f"{record.topic} {record.partition}@{record.offset} key={record.key_text}"


def _reason(record: Record) -> str:
    reason = record.header("dlq-reason") or "no reason recorded"
    service = record.header("dlq-service")
    return f"{service}: {reason}" if service else reason


# ---------------------------------------------------------------------------------------------------- ready
@cli.group(epilog=EPILOG)
def ready() -> None:
    """transcripts.ready: what downstream services receive."""


@ready.command("tail", epilog=EPILOG)
@click.option("--from-beginning", is_flag=True, help="Start at the oldest retained event, not at the end.")
@click.option("--max", "max_events", type=click.IntRange(min=1), metavar="N", help="Stop after N events.")
@_positive_seconds("Stop after this long.", default=None)
@click.option("--key", "recording_id", callback=_recording_id, metavar="RECORDING_ID", help="Only this recording.")
@click.option("--json", "as_json", is_flag=True, help="Print each event's record as JSON.")
@click.pass_obj
def ready_tail(
    options: Options,
    from_beginning: bool,
    max_events: int | None,
    timeout: float | None,
    recording_id: str | None,
    as_json: bool,
) -> None:
    """Print transcripts.ready events as they arrive, one line each (Ctrl-C stops). With --max or --timeout it
    stops by itself: exit 0 when it saw its N events (or, without --max, at least one), else 1."""
    settings = options.kafka()
    topic = TRANSCRIPTS_READY.name
    count = 0
    key = recording_id.encode() if recording_id is not None else None

    async def tail() -> None:
        nonlocal count
        async with KafkaReader(settings) as kafka:
            if not kafka.exists(topic):
                raise Failure(
                    f"{topic} does not exist on {servers(settings)}: is the pipeline deployed? "
                    "(its services create the topics at start-up)"
                )
            where = "the beginning" if from_beginning else "the end"
            async for record in kafka.follow(
                topic, from_beginning=from_beginning, on_ready=lambda: warn(f"tailing {topic} from {where} ...")
            ):
                if key is not None and record.key != key:
                    continue
                click.echo(render.as_json(record) if as_json else render.tail_line(record))
                count += 1
                if max_events is not None and count >= max_events:
                    return

    try:
        run(within(timeout, tail()) if timeout is not None else tail())
    except TimeoutError:
        pass
    except KeyboardInterrupt:
        warn(f"stopped after {count} event(s)")
        return
    if max_events is not None and count < max_events:
        raise Failure(f"got {count} of {max_events} event(s) within {timeout:g}s")
    if timeout is not None and count == 0:
        raise Failure(f"no {topic} events within {timeout:g}s")


def _logging(*, verbose: bool) -> None:
    """Client logs go to stderr, and only with --verbose: errors reach the user as one sentence each instead."""
    configure_logging(LoggingSettings(log_level="DEBUG" if verbose else "CRITICAL", log_format=LogFormat.CONSOLE))


def main() -> None:
    """The console script. (Tests call :data:`cli` in-process, which leaves the process's logging alone.)"""
    _logging(verbose=False)
    cli(prog_name="recall-pipeline")
