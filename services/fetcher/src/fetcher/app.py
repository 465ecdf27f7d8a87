"""The fetcher's faust app: topics, the per-recording Table, the agents, the retry timer and the web views.

The work lives in :mod:`fetcher.fetch` (Recall -> store), :mod:`fetcher.announce` (store -> transcripts.ready,
exactly once) and :mod:`fetcher.state` (decisions); this module moves data between Kafka, the Table and them.

Order of effects for one transcript: store every object, write the manifest (which records where the event will go),
send ``transcripts.ready`` and wait for the broker's ack, note "ready" in the Table, and only then is the source
offset committed (faust flushes the Table's changelog before it commits).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, Final

import faust
from aiohttp import web as aioweb
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from fetcher.announce import Announcer
from fetcher.fetch import Gone, Job, Rejected, RetryLater, TranscriptFetcher
from fetcher.metrics import FetcherMetrics
from fetcher.settings import FetcherSettings
from fetcher.state import (
    RecordingDoc,
    RetryPolicy,
    Source,
    Status,
    TranscriptState,
    due_retry,
    needs_work,
    on_retryable_failure,
)
from pipeline_common.cloudevents import CloudEventHeaderError, parse_headers
from pipeline_common.dlq import dlq_headers
from pipeline_common.logging import get_logger
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDispatcher, RetryDue
from pipeline_common.store import (
    StoreError,
    TranscriptKeys,
    TranscriptStore,
    find_transcript,
    read_manifest,
)
from pipeline_common.streaming import (
    add_operational_pages,
    create_faust_app,
    dead_letter,
    inbound,
    raw_topic,
    recordings_table,
    send_durably,
)
from pipeline_common.topics import FETCHER_RETRIES, TRANSCRIPT_EVENTS, TRANSCRIPTS_READY, dlq_topic

_log = get_logger("fetcher")
SERVICE: Final = "fetcher"
#: ``GET /transcripts/{id}?format=...`` -> the manifest's object name.
FORMATS: Final = {
    "json": "raw",
    "raw": "raw",
    "readable": "readable",
    "txt": "txt",
    "vtt": "vtt",
    "srt": "srt",
    "provider_data": "provider_data",
}
OBJECT_FILES: Final = {
    "raw": "transcript.json",
    "readable": "readable.json",
    "txt": "transcript.txt",
    "vtt": "transcript.vtt",
    "srt": "transcript.srt",
    "provider_data": "provider_data.json",
}


class Locks:
    """One asyncio lock per transcript id, so two events for the same transcript never work at once."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]


def _latin1(value: Any) -> str:
    if isinstance(value, str):
        return value
    return bytes(value or b"").decode("latin-1")


def _header_pairs(event: faust.EventT[Any]) -> list[tuple[str, bytes | None]]:
    raw = event.message.headers or []
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    return [(str(name), value if isinstance(value, bytes | None) else str(value).encode()) for name, value in pairs]


def create_app(
    settings: FetcherSettings, *, recall: RecallClient | None = None, store: TranscriptStore | None = None
) -> faust.App:
    policy = RetryPolicy.from_settings(settings)
    metrics = FetcherMetrics()
    rng = random.Random()  # noqa: S311 - jitter, not cryptography
    recall_client = recall or RecallClient.from_settings(
        settings,
        download_timeout=settings.fetcher_download_timeout_seconds,
        download_hosts=settings.download_hosts(),
    )
    transcript_store = store or settings.open_store()
    app = create_faust_app(settings, settings.faust_worker())
    transcript_events = raw_topic(app, TRANSCRIPT_EVENTS.name)
    retries = raw_topic(app, FETCHER_RETRIES.name, partitions=FETCHER_RETRIES.partitions)
    ready_out = raw_topic(app, TRANSCRIPTS_READY.name)
    dlq = raw_topic(app, dlq_topic(SERVICE).name)
    recordings = recordings_table(app)
    announcer = Announcer(settings, ready_out)
    fetcher = TranscriptFetcher(
        recall=recall_client,
        store=transcript_store,
        metrics=metrics,
        max_bytes=settings.fetcher_max_transcript_bytes,
        expired_url_retries=settings.fetcher_expired_url_retries,
        store_provider_data=settings.fetcher_store_provider_data,
        prepare_announcement=announcer.prepare,
    )
    locks = Locks()
    dispatcher = RetryDispatcher(lambda due: send_durably(retries, due.recording_id.encode(), due.dumps(), []))

    # --- the Table ------------------------------------------------------------------------------------------------

    def load(recording_id: str) -> RecordingDoc:
        return RecordingDoc.from_table(recording_id, recordings.get(recording_id))

    def get(recording_id: str, transcript_id: str) -> TranscriptState | None:
        return load(recording_id).transcripts.get(transcript_id)

    def save(recording_id: str, state: TranscriptState) -> None:
        # Load and store with no await in between: other transcripts of the recording may be in flight.
        doc = load(recording_id)
        doc.transcripts[state.transcript_id] = state
        recordings[recording_id] = doc.to_table()

    # --- outcomes -------------------------------------------------------------------------------------------------

    async def dead_letter_source(state: TranscriptState, recording_id: str, reason: str) -> None:
        source = state.source
        if source is None:  # pragma: no cover - every state is created from an event
            _log.error("cannot dead-letter: the source event is unknown", transcript_id=state.transcript_id)
            return
        original = [(name, value.encode("latin-1")) for name, value in source.headers]
        headers = dlq_headers(
            original,
            reason=reason,
            service=SERVICE,
            topic=source.topic,
            partition=source.partition,
            offset=source.offset,
        )
        await send_durably(dlq, recording_id.encode(), source.body.encode("latin-1"), headers)
        metrics.dlq.inc()
        _log.error(
            "transcript.done sent to the dead-letter queue",
            dlq=dlq.get_topic_name(),
            recording_id=recording_id,
            transcript_id=state.transcript_id,
            reason=reason,
        )

    async def attempt(recording_id: str, state: TranscriptState) -> None:
        job = Job(
            recording_id=recording_id,
            transcript_id=state.transcript_id,
            bot_id=state.bot_id,
            completed_at=state.completed_at,
            recording_metadata=dict(state.recording_metadata),
            transcript_metadata=dict(state.transcript_metadata),
        )
        try:
            stored = await fetcher.fetch(job)
            if settings.fetcher_fault_pause_before_announce_seconds:
                _log.warning("fault injection: pausing before the announcement", transcript_id=state.transcript_id)
                await asyncio.sleep(settings.fetcher_fault_pause_before_announce_seconds)
            try:
                offset, sent = await announcer.announce(
                    stored.manifest, fresh=stored.fresh, traceparent=state.traceparent
                )
            except (KafkaError, OSError, RuntimeError, TimeoutError) as error:
                raise RetryLater(f"kafka: {type(error).__name__}: {error}") from None
        except Gone as gone:
            save(
                recording_id,
                state.model_copy(
                    update={"status": Status.GONE, "retry": None, "last_error": str(gone), "updated_at": now()}
                ),
            )
            metrics.gone.inc()
            _log.info(
                "transcript is gone at Recall; nothing to announce", transcript_id=state.transcript_id, reason=str(gone)
            )
            return
        except Rejected as rejected:
            save(
                recording_id,
                state.model_copy(
                    update={"status": Status.REJECTED, "retry": None, "last_error": str(rejected), "updated_at": now()}
                ),
            )
            await dead_letter_source(state, recording_id, str(rejected))
            return
        except RetryLater as failure:
            decision = on_retryable_failure(
                state,
                kind=failure.kind,
                reason=str(failure),
                retry_after=failure.retry_after,
                policy=policy,
                now=now(),
                rng=rng,
            )
            save(recording_id, decision.state)
            if decision.dead_letter:
                await dead_letter_source(decision.state, recording_id, decision.state.last_error or str(failure))
                return
            metrics.retries.labels(kind=failure.kind.value).inc()
            if decision.operator_problem:
                metrics.operator_problems.inc()
                _log.error(
                    "Recall refuses our credentials or billing: fix RECALL_API_KEY or the account; retrying slowly",
                    transcript_id=state.transcript_id,
                    error=str(failure),
                )
            else:
                _log.warning(
                    "transcript fetch failed; retry scheduled",
                    transcript_id=state.transcript_id,
                    attempts=decision.state.attempts,
                    due_at=decision.state.retry.due_at.isoformat() if decision.state.retry else None,
                    error=str(failure),
                )
            return
        if settings.fetcher_fault_pause_after_announce_seconds:
            _log.warning("fault injection: pausing after the announcement", transcript_id=state.transcript_id)
            await asyncio.sleep(settings.fetcher_fault_pause_after_announce_seconds)
        event = stored.manifest.event
        assert event is not None and stored.manifest.announcement is not None
        save(
            recording_id,
            state.model_copy(
                update={
                    "status": Status.READY,
                    "retry": None,
                    "last_error": None,
                    "manifest_uri": transcript_store.uri(TranscriptKeys(recording_id, state.transcript_id).manifest),
                    "ready_event_id": stored.manifest.announcement.event_id,
                    "ready_partition": stored.manifest.announcement.partition,
                    "ready_offset": offset,
                    "word_count": event.word_count,
                    "updated_at": now(),
                }
            ),
        )
        if sent:
            metrics.ready.inc()
            metrics.end_to_end_seconds.observe(max(0.0, (event.ready_at - event.completed_at).total_seconds()))
            _log.info(
                "transcripts.ready emitted",
                recording_id=recording_id,
                transcript_id=state.transcript_id,
                words=event.word_count,
                partition=stored.manifest.announcement.partition,
                offset=offset,
            )
        else:
            metrics.duplicates.labels(via="topic").inc()

    # --- events ---------------------------------------------------------------------------------------------------

    def source_of(event: faust.EventT[Any]) -> Source:
        message = event.message
        return Source(
            topic=message.topic,
            partition=message.partition,
            offset=message.offset,
            body=(message.value or b"").decode("latin-1"),
            headers=[(name, _latin1(value)) for name, value in _header_pairs(event)],
        )

    async def on_done(event: faust.EventT[Any], webhook: WebhookEvent) -> None:
        recording_id, transcript_id = webhook.recording_id, webhook.transcript_id
        assert recording_id is not None and transcript_id is not None
        async with locks.hold(transcript_id):
            state = get(recording_id, transcript_id)
            if not needs_work(state):
                assert state is not None
                if state.status is Status.READY:
                    metrics.duplicates.labels(via="table").inc()
                    save(recording_id, state.model_copy(update={"duplicates": state.duplicates + 1}))
                _log.info(
                    "duplicate transcript.done: nothing to do",
                    transcript_id=transcript_id,
                    status=state.status.value,
                )
                return
            moment = now()
            try:
                attributes = parse_headers(_header_pairs(event))
                received_at, traceparent = attributes.time, attributes.traceparent
            except CloudEventHeaderError:
                received_at, traceparent = None, None
            base = state or TranscriptState(transcript_id=transcript_id, first_seen_at=moment, updated_at=moment)
            working = base.model_copy(
                update={
                    "status": Status.FETCHING,
                    "bot_id": webhook.bot_id,
                    "completed_at": webhook.updated_at,
                    "received_at": received_at,
                    "recording_metadata": webhook.recording_metadata,
                    "transcript_metadata": webhook.transcript_metadata,
                    "traceparent": traceparent,
                    "retry": None,
                    "source": source_of(event),
                    "updated_at": moment,
                }
            )
            save(recording_id, working)
            await attempt(recording_id, working)

    def on_deleted(webhook: WebhookEvent) -> None:
        recording_id, transcript_id = webhook.recording_id, webhook.transcript_id
        assert recording_id is not None and transcript_id is not None
        state = get(recording_id, transcript_id)
        if state is not None and state.status in (Status.RETRY_SCHEDULED, Status.BLOCKED, Status.FETCHING):
            save(
                recording_id,
                state.model_copy(
                    update={
                        "status": Status.GONE,
                        "retry": None,
                        "last_error": "transcript.deleted",
                        "updated_at": now(),
                    }
                ),
            )
            metrics.gone.inc()

    @app.agent(transcript_events, name="transcript-events", concurrency=settings.fetcher_concurrency)
    async def handle_transcript_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                try:
                    webhook = parse_webhook_event(event.message.value or b"")
                except InvalidRecallPayload as invalid:
                    raise PoisonMessage(str(invalid)) from None
                metrics.events.labels(event_type=webhook.event).inc()
                if webhook.family != "transcript" or webhook.name not in ("done", "deleted"):
                    continue  # transcript.failed and the rest are the transcriber's
                if webhook.transcript_id is None or webhook.recording_id is None:
                    raise PoisonMessage(f"{webhook.event} carries no transcript or recording id")
                if webhook.name == "deleted":
                    on_deleted(webhook)
                else:
                    await on_done(event, webhook)
            except (PoisonMessage, ValidationError) as poison:
                await dead_letter(dlq, inbound(event), reason=str(poison), service=SERVICE)
                metrics.dlq.inc()

    @app.agent(retries, name="retries", concurrency=settings.fetcher_concurrency)
    async def handle_retries(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            try:
                due = RetryDue.loads(event.message.value)
                async with locks.hold(due.target):
                    state = get(due.recording_id, due.target)
                    if not due_retry(state, due.sequence):
                        continue
                    assert state is not None
                    working = state.model_copy(update={"status": Status.FETCHING, "updated_at": now()})
                    save(due.recording_id, working)
                    await attempt(due.recording_id, working)
            except (PoisonMessage, ValidationError) as poison:
                await dead_letter(dlq, inbound(event), reason=str(poison), service=SERVICE)
                metrics.dlq.inc()

    @app.timer(interval=settings.fetcher_retry_scan_seconds, on_leader=False)  # type: ignore[untyped-decorator]
    async def dispatch_due_retries() -> None:
        """Wake up, through the retries topic, every transcript whose retry is due. Scanning the Table (not sleeping
        in an agent) keeps every other transcript on the partition flowing while one waits out a backoff."""
        metrics.retry_backlog.set(await dispatcher.dispatch(pending_retries(recordings.items()), now()))

    # --- web ------------------------------------------------------------------------------------------------------

    add_operational_pages(app, metrics.registry)

    @app.page("/recordings/{recording_id}")
    @app.table_route(table=recordings, match_info="recording_id")
    async def recording_status(web: Any, request: Any, recording_id: str) -> Any:
        value = recordings.get(recording_id)
        if value is None:
            return web.json({"error": "not_found", "recording_id": recording_id}, status=404)
        return web.json(RecordingDoc.from_table(recording_id, value).public())

    @app.page("/transcripts/{transcript_id}")
    async def transcript_content(web: Any, request: Any, transcript_id: str) -> Any:
        wanted = request.query.get("format", "json")
        name = FORMATS.get(wanted)
        if name is None:
            return web.json({"error": "bad_format", "formats": sorted(FORMATS)}, status=400)
        try:
            keys = await find_transcript(transcript_store, transcript_id)
            manifest = await read_manifest(transcript_store, keys) if keys is not None else None
        except ValueError:
            return web.json({"error": "not_found", "transcript_id": transcript_id[:128]}, status=404)
        except StoreError as error:
            _log.warning("store unavailable for a read", error=str(error))
            return web.json({"error": "store_unavailable"}, status=503)
        if keys is None or manifest is None:
            return web.json({"error": "not_found", "transcript_id": transcript_id}, status=404)
        stored = manifest.object(name)
        if stored is None:
            return web.json({"error": "not_stored", "format": wanted}, status=404)
        response = aioweb.StreamResponse(
            headers={
                "Content-Type": stored.content_type,
                "Content-Length": str(stored.size_bytes),
                "ETag": f'"{stored.sha256}"',
                "X-Transcript-Uri": stored.uri,
            }
        )
        await response.prepare(request)
        async for chunk in transcript_store.iter_bytes(keys.key(OBJECT_FILES[name])):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def close_clients(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        await announcer.close()
        await recall_client.aclose()
        await transcript_store.close()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]
    app.recall_client = recall_client  # type: ignore[attr-defined]
    app.transcript_store = transcript_store  # type: ignore[attr-defined]
    app.fetcher_metrics = metrics  # type: ignore[attr-defined]
    return app


def pending_retries(items: Iterable[tuple[str, Any]]) -> Iterator[PendingRetry]:
    """The scheduled retries in the Table's (local) items, read straight from the stored JSON."""
    for recording_id, value in list(items):
        for transcript_id, raw in ((value or {}).get("transcripts") or {}).items():
            retry = raw.get("retry")
            if retry and raw.get("status") in (Status.RETRY_SCHEDULED, Status.BLOCKED):
                due = RetryDue(recording_id, transcript_id, int(retry["sequence"]))
                yield PendingRetry(due, datetime.fromisoformat(retry["due_at"]))


def now() -> datetime:
    return datetime.now(UTC)
