"""The transcriber's faust app: topics, the per-recording Table, the agents, the retry timer and the web views.

The decisions live in :mod:`transcriber.lifecycle`; this module only moves data between Kafka, the Table and Recall.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import ValidationError

from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import FAILED_EVENT_TYPE, TranscriptFailed
from pipeline_common.logging import get_logger
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import InvalidRecallPayload, RecallApiError
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDispatcher, RetryDue
from pipeline_common.streaming import (
    add_operational_pages,
    create_faust_app,
    dead_letter,
    raw_topic,
    recordings_table,
    send_durably,
)
from pipeline_common.topics import (
    RECORDING_EVENTS,
    TRANSCRIBER_RETRIES,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    dlq_topic,
)
from transcriber import lifecycle
from transcriber.fallback import Policy
from transcriber.metrics import TranscriberMetrics
from transcriber.settings import TranscriberSettings
from transcriber.state import RecordingState, Status

_log = get_logger("transcriber")
SERVICE = "transcriber"


def create_app(settings: TranscriberSettings, *, recall: RecallClient | None = None) -> faust.App:
    policy = Policy.from_settings(settings)
    metrics = TranscriberMetrics()
    rng = random.Random()  # noqa: S311 - jitter, not cryptography
    recall_client = recall or RecallClient.from_settings(settings)
    app = create_faust_app(settings, settings.faust_worker())
    recall_events = raw_topic(app, RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name)
    retries = raw_topic(app, TRANSCRIBER_RETRIES.name, partitions=TRANSCRIBER_RETRIES.partitions)
    failed_out = raw_topic(app, TRANSCRIPTS_FAILED.name)
    dlq = raw_topic(app, dlq_topic(SERVICE).name)
    recordings = recordings_table(app)
    dispatcher = RetryDispatcher(lambda due: send_durably(retries, due.recording_id.encode(), due.dumps(), []))

    def load(recording_id: str) -> RecordingState | None:
        return RecordingState.from_table(recordings.get(recording_id))

    def store(state: RecordingState) -> None:
        recordings[state.recording_id] = state.to_table()

    async def to_dlq(event: faust.EventT[Any], reason: str) -> None:
        await dead_letter(dlq, event, reason=reason, service=SERVICE)
        metrics.dlq.inc()

    async def emit_failed(failed: TranscriptFailed) -> None:
        headers = build_headers(
            CloudEventAttributes(
                # Deterministic: a re-emission after a crash carries the same id, so consumers can drop it.
                id=f"transcript-failed:{failed.recording_id}",
                source=f"urn:recall-pipeline:{SERVICE}",
                type=FAILED_EVENT_TYPE,
                time=failed.failed_at,
                subject=failed.recording_id,
            )
        )
        await send_durably(failed_out, failed.recording_id.encode(), failed.model_dump_json().encode(), headers)
        metrics.terminal_failures.labels(reason=failed.reason.value).inc()

    async def call_create(state: RecordingState, call: lifecycle.CreateCall) -> lifecycle.Decision:
        started = time.perf_counter()
        try:
            artifact = await recall_client.create_transcript(
                call.recording_id,
                call.provider,
                policy.diarization,
                call.metadata,
                call.idempotency_key,
            )
        except RecallApiError as error:
            metrics.recall_latency.labels(operation="create_transcript").observe(time.perf_counter() - started)
            metrics.creates.labels(provider=call.provider.provider_name, outcome=error.kind.value).inc()
            metrics.recall_calls.labels(operation="create_transcript", outcome=error.kind.value).inc()
            decision = lifecycle.on_create_failed(state, call.attempt, error, policy, now(), rng)
            if decision.operator_problem:
                metrics.operator_problem(error.status)
                _log.error(
                    "Recall refuses our credentials or billing: fix RECALL_API_KEY or the account; retrying slowly",
                    recording_id=call.recording_id,
                    status=error.status,
                    error=str(error),
                )
            return decision
        metrics.recall_latency.labels(operation="create_transcript").observe(time.perf_counter() - started)
        metrics.creates.labels(provider=call.provider.provider_name, outcome="created").inc()
        metrics.recall_calls.labels(operation="create_transcript", outcome="ok").inc()
        return lifecycle.on_create_succeeded(state, call.attempt, artifact.id, now())

    async def carry_out(decision: lifecycle.Decision, event_type: str) -> None:
        """Store the new state first, then act; a create's outcome is decided and carried out in turn."""
        state = decision.state
        if state is not None:
            store(state)
        if decision.fallback:
            metrics.fallbacks.inc()
        _log.info(decision.note, event_type=event_type, recording_id=(state.recording_id if state else None))
        if decision.failed is not None:
            await emit_failed(decision.failed)
        if decision.create is not None:
            current = load(decision.create.recording_id)
            assert current is not None
            await carry_out(await call_create(current, decision.create), "create_transcript")

    def decide(event: WebhookEvent) -> lifecycle.Decision:
        assert event.recording_id is not None
        state = load(event.recording_id)
        family, name = event.family, event.name
        if family == "recording" and name == "done":
            return lifecycle.on_recording_done(state, event, policy, now())
        if family == "recording" and name in ("failed", "deleted"):
            return lifecycle.on_recording_gone(state, event, now())
        if family == "transcript" and name == "failed":
            return lifecycle.on_transcript_failed(state, event, policy, now())
        if family == "transcript" and name == "done":
            return lifecycle.on_transcript_done(state, event, policy, now())
        return lifecycle.Decision(state=None, note=f"{event.event} needs nothing from the transcriber")

    @app.agent(recall_events, name="recall-events")
    async def handle_recall_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                try:
                    webhook = parse_webhook_event(event.message.value or b"")
                except InvalidRecallPayload as invalid:
                    raise PoisonMessage(str(invalid)) from None
                if webhook.recording_id is None:
                    raise PoisonMessage(f"{webhook.event} carries no recording id")
                metrics.events.labels(event_type=webhook.event).inc()
                await carry_out(decide(webhook), webhook.event)
            except (PoisonMessage, ValidationError) as poison:
                await to_dlq(event, str(poison))

    @app.agent(retries, name="retries")
    async def handle_retries(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                due = RetryDue.loads(event.message.value)
                if not due.target.isdigit():
                    raise PoisonMessage(f"retry target {due.target[:40]!r} is not an attempt number")
                decision = lifecycle.on_retry_due(load(due.recording_id), int(due.target), due.sequence, now(), policy)
                await carry_out(decision, "retry_due")
            except (PoisonMessage, ValidationError) as poison:
                await to_dlq(event, str(poison))

    @app.timer(interval=settings.transcriber_retry_scan_seconds, on_leader=False)  # type: ignore[untyped-decorator]
    async def dispatch_due_retries() -> None:
        """Wake up, through the retries topic, every recording whose retry is due. Scanning the Table (not sleeping
        in an agent) keeps every other recording on the partition flowing while one waits out a Retry-After."""
        metrics.retry_backlog.set(await dispatcher.dispatch(pending_retries(recordings.items()), now()))

    metrics.watch_recordings(recordings.items, settings.transcriber_recording_deadline_seconds)
    add_operational_pages(app, metrics.registry, ready_gauge="transcriber_worker_ready")

    @app.page("/recordings/{recording_id}")
    async def recording_state(web: Any, request: Any, recording_id: str) -> Any:
        value = recordings.get(recording_id)
        if value is None:
            return web.json({"error": "not_found", "recording_id": recording_id}, status=404)
        return web.json(value)

    app.recall_client = recall_client  # type: ignore[attr-defined]
    return app


def pending_retries(items: Iterable[tuple[str, Any]]) -> Iterator[PendingRetry]:
    """The scheduled retries in the Table's (local) items, read straight from the stored JSON."""
    for recording_id, value in list(items):
        retry = (value or {}).get("retry")
        if retry and (value or {}).get("status") not in (Status.DONE, Status.FAILED):
            due = RetryDue(recording_id, str(retry["attempt"]), int(retry["sequence"]))
            yield PendingRetry(due, datetime.fromisoformat(retry["due_at"]))


def now() -> datetime:
    return datetime.now(UTC)
