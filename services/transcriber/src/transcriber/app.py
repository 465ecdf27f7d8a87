"""The transcriber's faust app: only wiring. Topics, the per-recording Table, two agents, the timer and the pages
around :class:`transcriber.worker.Transcriber`, which holds the per-event logic (decisions in
:mod:`transcriber.lifecycle`)."""

from __future__ import annotations

from typing import Any

import faust

from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import FAILED_EVENT_TYPE, TranscriptFailed, failed_event_id
from pipeline_common.recall.client import RecallClient
from pipeline_common.retries import RetryDue
from pipeline_common.streaming import (
    add_worker_agents,
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
from pipeline_common.worker import Inbound
from transcriber.fallback import Policy
from transcriber.metrics import TranscriberMetrics
from transcriber.pages import add_pages
from transcriber.settings import TranscriberSettings
from transcriber.worker import Senders, Transcriber

SERVICE = "transcriber"


def create_app(settings: TranscriberSettings, *, recall: RecallClient | None = None) -> faust.App:
    recall_client = recall or RecallClient.from_settings(settings)
    app = create_faust_app(settings, settings.faust_worker())
    recall_events = raw_topic(app, RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name)
    retries = raw_topic(app, TRANSCRIBER_RETRIES.name, partitions=TRANSCRIBER_RETRIES.partitions)
    failed_out = raw_topic(app, TRANSCRIPTS_FAILED.name)
    transcript_out = raw_topic(app, TRANSCRIPT_EVENTS.name)
    dlq = raw_topic(app, dlq_topic(SERVICE).name)
    recordings = recordings_table(app)
    metrics = TranscriberMetrics()

    async def send_failed(failed: TranscriptFailed) -> None:
        headers = build_headers(
            CloudEventAttributes(
                # Deterministic: a re-emission after a crash carries the same id, so consumers can drop it.
                id=failed_event_id(failed.recording_id),
                source=f"urn:recall-pipeline:{SERVICE}",
                type=FAILED_EVENT_TYPE,
                time=failed.failed_at,
                subject=failed.recording_id,
            )
        )
        await send_durably(failed_out, failed.recording_id.encode(), failed.model_dump_json().encode(), headers)

    async def send_retry(due: RetryDue) -> None:
        await send_durably(retries, due.recording_id.encode(), due.dumps(), [])

    async def send_dead_letter(message: Inbound, reason: str) -> None:
        await dead_letter(dlq, message, reason=reason, service=SERVICE)

    async def send_transcript_event(key: str, body: bytes, headers: list[tuple[str, bytes]]) -> None:
        await send_durably(transcript_out, key.encode(), body, headers)

    transcriber = Transcriber(
        table=recordings,
        recall=recall_client,
        policy=Policy.from_settings(settings),
        senders=Senders(send_failed, send_retry, send_dead_letter, send_transcript_event),
        limits=settings.limits(),
        metrics=metrics,
    )

    add_worker_agents(
        app,
        transcriber,
        events=recall_events,
        events_agent="recall-events",
        retries=retries,
        scan_seconds=settings.transcriber_retry_scan_seconds,
        sweep_seconds=settings.transcriber_sweep_seconds,
    )
    add_pages(app, recordings, metrics.registry)

    metrics.watch_recordings(recordings.items, settings.transcriber_deadline_seconds)

    async def close_clients(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        await recall_client.aclose()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]
    return app
