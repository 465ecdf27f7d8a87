"""The fetcher's faust app: only wiring. Topics, the per-recording Table, two agents, the timer and the pages around
:class:`fetcher.worker.Fetcher`, which holds the per-event logic.

One transcript's way: :mod:`fetcher.fetch` stores its objects, :mod:`fetcher.publish` builds ``TranscriptReady``,
records the announcement, writes the manifest and sends it (waiting for the broker's ack), the Table notes "ready",
and only then is the source offset committed (faust flushes the Table's changelog before it commits).
"""

from __future__ import annotations

from typing import Any, Final

import faust

from fetcher.announce import Announcer
from fetcher.fence import Fence
from fetcher.fetch import TranscriptFetcher
from fetcher.metrics import FetcherMetrics
from fetcher.pages import add_pages
from fetcher.publish import Publisher
from fetcher.settings import FetcherSettings
from fetcher.state import RetryPolicy
from fetcher.worker import Fetcher, Senders
from pipeline_common.recall.client import RecallClient
from pipeline_common.store import TranscriptStore
from pipeline_common.streaming import (
    WorkerOutputs,
    add_worker_agents,
    create_faust_app,
    raw_topic,
    recordings_table,
)
from pipeline_common.topics import FETCHER_RETRIES, TRANSCRIPT_EVENTS, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY, dlq_topic
from pipeline_common.worker import now

SERVICE: Final = "fetcher"


def create_app(
    settings: FetcherSettings, *, recall: RecallClient | None = None, store: TranscriptStore | None = None
) -> faust.App:
    metrics = FetcherMetrics()
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
    failed_out = raw_topic(app, TRANSCRIPTS_FAILED.name)
    dlq = raw_topic(app, dlq_topic(SERVICE).name)
    recordings = recordings_table(app)
    fence = Fence(settings, app_id=settings.fetcher_app_id, source_topic=TRANSCRIPT_EVENTS.name)
    announcer = Announcer(settings, ready_out.get_topic_name(), fence)

    outputs = WorkerOutputs(SERVICE, retries=retries, dlq=dlq, failed=failed_out)

    fetcher = Fetcher(
        table=recordings,
        fetcher=TranscriptFetcher(
            recall=recall_client,
            store=transcript_store,
            metrics=metrics,
            max_bytes=settings.fetcher_max_transcript_bytes,
            expired_url_retries=settings.fetcher_expired_url_retries,
            store_provider_data=settings.fetcher_store_provider_data,
        ),
        publisher=Publisher(
            store=transcript_store,
            announcer=announcer,
            clock=now,
            pause_before_send=settings.fetcher_fault_pause_before_announce_seconds,
        ),
        policy=RetryPolicy.from_settings(settings),
        senders=Senders(retry=outputs.retry, dead_letter=outputs.dead_letter, failed=outputs.transcript_failed),
        limits=settings.limits(),
        metrics=metrics,
        pause_after_send=settings.fetcher_fault_pause_after_announce_seconds,
    )

    add_worker_agents(
        app,
        fetcher,
        events=transcript_events,
        events_agent="transcript-events",
        retries=retries,
        concurrency=settings.fetcher_concurrency,
        scan_seconds=settings.fetcher_retry_scan_seconds,
        sweep_seconds=settings.fetcher_sweep_seconds,
    )
    add_pages(app, recordings, transcript_store, metrics.registry)
    metrics.watch_transcripts(recordings.items, settings.fetcher_deadline_seconds)

    async def close_clients(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
        await announcer.close()
        await recall_client.aclose()
        await transcript_store.close()

    app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]
    return app
