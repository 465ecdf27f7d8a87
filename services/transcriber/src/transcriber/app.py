"""The transcriber's faust app: only wiring. Topics, the per-recording Table, two agents, the timer and the pages
around :class:`transcriber.worker.Transcriber`, which holds the per-event logic (decisions in
:mod:`transcriber.lifecycle`)."""

from __future__ import annotations

from typing import Any

import faust

from pipeline_common.recall.client import RecallClient
from pipeline_common.streaming import (
    WorkerOutputs,
    add_worker_agents,
    create_faust_app,
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

    outputs = WorkerOutputs(SERVICE, retries=retries, dlq=dlq, failed=failed_out)

    async def send_transcript_event(key: str, body: bytes, headers: list[tuple[str, bytes]]) -> None:
        await send_durably(transcript_out, key.encode(), body, headers)

    transcriber = Transcriber(
        table=recordings,
        recall=recall_client,
        policy=Policy.from_settings(settings),
        senders=Senders(outputs.transcript_failed, outputs.retry, outputs.dead_letter, send_transcript_event),
        limits=settings.limits(),
        metrics=metrics,
    )

    add_worker_agents(
        app,
        transcriber,
        events=recall_events,
        events_agent="recall-events",
        retries=retries,
        concurrency=settings.transcriber_concurrency,
        scan_seconds=settings.transcriber_retry_scan_seconds,
        sweep_seconds=settings.transcriber_sweep_seconds,
    )
    add_pages(app, recordings, metrics.registry)

    metrics.watch_recordings(recordings.items, settings.transcriber_deadline_seconds)

    async def close_clients(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        await recall_client.aclose()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]
    return app
