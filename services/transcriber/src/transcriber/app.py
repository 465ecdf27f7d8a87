"""The transcriber's faust app: only wiring. Topics, the per-recording Table, two agents, the timer and the pages
around :class:`transcriber.worker.Transcriber`, which holds the per-event logic (decisions in
:mod:`transcriber.lifecycle`)."""

from __future__ import annotations

import faust

from pipeline_common.recall.client import RecallClient
from pipeline_common.streaming import raw_topic, send_durably
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIBER_RETRIES, TRANSCRIPT_EVENTS
from pipeline_common.worker_app import WorkerApp
from transcriber.fallback import Policy
from transcriber.metrics import TranscriberMetrics
from transcriber.pages import add_pages
from transcriber.settings import TranscriberSettings
from transcriber.worker import Senders, Transcriber


def create_app(settings: TranscriberSettings, *, recall: RecallClient | None = None) -> faust.App:
    recall_client = recall or RecallClient.from_settings(settings)
    wiring = WorkerApp.create(settings, TRANSCRIBER_RETRIES)
    transcript_out = raw_topic(wiring.app, TRANSCRIPT_EVENTS.name)
    metrics = TranscriberMetrics()
    outputs = wiring.outputs

    async def send_transcript_event(key: str, body: bytes, headers: list[tuple[str, bytes]]) -> None:
        await send_durably(transcript_out, key.encode(), body, headers)

    transcriber = Transcriber(
        table=wiring.recordings,
        recall=recall_client,
        policy=Policy.from_settings(settings),
        senders=Senders(outputs.transcript_failed, outputs.retry, outputs.dead_letter, send_transcript_event),
        limits=settings.limits(),
        metrics=metrics,
    )
    add_pages(wiring.app, wiring.recordings, metrics.registry)
    return wiring.start(
        transcriber,
        metrics,
        events=raw_topic(wiring.app, RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name),
        events_agent="recall-events",
        concurrency=settings.transcriber_concurrency,
        close=(recall_client.aclose,),
    )
