"""What both workers' ``app.py`` wire the same way (docs/worker-core.md): the faust app, the per-recording Table,
the worker's retries topic and the outputs every worker sends to; then, around the worker, its two agents and timer,
the Table's gauges and the clients closed on shutdown. An ``app.py`` adds only its own topics, collaborators and
pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from faust.types import TableT, TopicT

from pipeline_common.metrics import WorkerMetrics
from pipeline_common.streaming import (
    EventHandler,
    WorkerOutputs,
    add_worker_agents,
    create_faust_app,
    raw_topic,
    recordings_table,
)
from pipeline_common.topics import TRANSCRIPTS_FAILED, TopicSpec, dlq_topic
from pipeline_common.worker_settings import WorkerSettings


@dataclass(frozen=True)
class WorkerApp:
    settings: WorkerSettings
    app: faust.App
    recordings: TableT[str, Any]
    retries: TopicT
    outputs: WorkerOutputs

    @classmethod
    def create(cls, settings: WorkerSettings, retries: TopicSpec) -> WorkerApp:
        """The app of the worker ``settings`` describe (its name is the settings' prefix: ``transcriber``,
        ``fetcher``), with its Table and the topics every worker writes to."""
        service = settings.WORKER_PREFIX
        app = create_faust_app(settings, settings.faust_worker())
        retries_topic = raw_topic(app, retries.name, partitions=retries.partitions)
        outputs = WorkerOutputs(
            service,
            retries=retries_topic,
            dlq=raw_topic(app, dlq_topic(service).name),
            failed=raw_topic(app, TRANSCRIPTS_FAILED.name),
        )
        return cls(settings, app, recordings_table(app), retries_topic, outputs)

    def start(
        self,
        worker: EventHandler,
        metrics: WorkerMetrics,
        *,
        events: TopicT,
        events_agent: str,
        concurrency: int = 1,
        close: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> faust.App:
        """Hand the worker its events and retries, start its timer, watch its Table, and close ``close`` (the
        clients the worker uses) before the app shuts down; the app, ready to run."""
        limits = self.settings.limits()
        add_worker_agents(
            self.app,
            worker,
            events=events,
            events_agent=events_agent,
            retries=self.retries,
            concurrency=concurrency,
            scan_seconds=limits.retry_scan_seconds,
            sweep_seconds=limits.sweep_seconds,
        )
        metrics.watch_table(self.recordings.items, limits.deadline_seconds)

        async def close_clients(_sender: Any, *_args: Any, **_kwargs: Any) -> None:
            for close_one in close:
                await close_one()

        self.app.on_before_shutdown.connect(close_clients)  # type: ignore[arg-type]
        return self.app
