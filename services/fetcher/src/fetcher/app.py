"""The fetcher's faust app: only wiring. Topics, the per-recording Table, two agents, the timer and the pages around
:class:`fetcher.worker.Fetcher`, which holds the per-event logic.

One transcript's way: :mod:`fetcher.fetch` stores its objects, :mod:`fetcher.publish` builds ``TranscriptReady``,
records the announcement, writes the manifest and sends it (waiting for the broker's ack), the Table notes "ready",
and only then is the source offset committed (faust flushes the Table's changelog before it commits).
"""

from __future__ import annotations

import faust

from fetcher.announce import Announcer
from fetcher.budget import ByteBudget
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
from pipeline_common.streaming import raw_topic
from pipeline_common.topics import FETCHER_RETRIES, TRANSCRIPT_EVENTS, TRANSCRIPTS_READY
from pipeline_common.worker import now
from pipeline_common.worker_app import WorkerApp


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
    wiring = WorkerApp.create(settings, FETCHER_RETRIES)
    fence = Fence(settings, app_id=settings.fetcher_app_id, source_topic=TRANSCRIPT_EVENTS.name)
    announcer = Announcer(settings, TRANSCRIPTS_READY.name, fence)
    outputs = wiring.outputs

    fetcher = Fetcher(
        table=wiring.recordings,
        fetcher=TranscriptFetcher(
            recall=recall_client,
            store=transcript_store,
            metrics=metrics,
            max_bytes=settings.fetcher_max_transcript_bytes,
            expired_url_retries=settings.fetcher_expired_url_retries,
            store_provider_data=settings.fetcher_store_provider_data,
            analysis_budget=ByteBudget(settings.fetcher_analysis_budget_bytes),
        ),
        publisher=Publisher(
            store=transcript_store,
            announcer=announcer,
            clock=now,
            pause_before_send=settings.fetcher_fault_pause_before_announce_seconds,
        ),
        policy=settings.own(RetryPolicy),
        senders=Senders(retry=outputs.retry, dead_letter=outputs.dead_letter, failed=outputs.transcript_failed),
        limits=settings.limits(),
        metrics=metrics,
        pause_after_send=settings.fetcher_fault_pause_after_announce_seconds,
    )
    add_pages(wiring.app, wiring.recordings, transcript_store, metrics.registry)
    return wiring.start(
        fetcher,
        metrics,
        events=raw_topic(wiring.app, TRANSCRIPT_EVENTS.name),
        events_agent="transcript-events",
        concurrency=settings.fetcher_concurrency,
        close=(announcer.close, recall_client.aclose, transcript_store.close),
    )
