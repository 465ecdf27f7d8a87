"""``recall-pipeline recording``: follow a recording across the topics; ask Recall for a new transcript."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Sequence
from typing import Any, Final

import click
from pydantic import ValidationError

from pipeline_cli import render
from pipeline_cli.arguments import check_recording_id, check_topic, timeout_option
from pipeline_cli.common import EPILOG, ConfigProblem, Failure, Options, recall_api, recall_errors, run, warn, within
from pipeline_cli.kafka import KafkaReader, Record, servers
from pipeline_common.contracts import TranscriptFailed, TranscriptReady
from pipeline_common.recall._base import describe_validation_error
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIPT_EVENTS, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY

#: The topics a recording's lifecycle crosses, in the order they are normally written.
LIFECYCLE_TOPICS: Final = (
    RECORDING_EVENTS.name,
    TRANSCRIPT_EVENTS.name,
    TRANSCRIPTS_READY.name,
    TRANSCRIPTS_FAILED.name,
)
DEFAULT_PROVIDER: Final = {"recallai_async": {"language_code": "auto"}}


@click.group(epilog=EPILOG)
def recording() -> None:
    """A recording's lifecycle: show it, or re-request its transcript."""


@recording.command("show", epilog=EPILOG)
@click.argument("recording_id", callback=check_recording_id)
@click.option(
    "--topic",
    "topics",
    multiple=True,
    callback=lambda ctx, param, values: tuple(check_topic(ctx, param, value) for value in values),
    metavar="TOPIC",
    help="Read this topic instead of the lifecycle topics (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event instead of a readable line.")
@timeout_option("Give up reading after this long.")
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
@click.argument("recording_id", callback=check_recording_id)
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
    settings, api_key = recall_api("retranscribe calls Recall's Create Async Transcript and needs the API key")
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

    with recall_errors("Recall did not create a transcript", key_context=f" at {settings.recall_base_url}"):
        transcript_id = asyncio.run(create())
    click.echo(transcript_id)
    warn(
        f"requested transcript {transcript_id} of recording {recording_id} with {provider.provider_name} "
        f"at {settings.recall_base_url} (Idempotency-Key {idempotency_key})"
    )
