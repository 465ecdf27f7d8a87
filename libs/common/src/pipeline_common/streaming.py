"""What every faust-streaming service here does the same way: connect, write durably, dead-letter, and answer
health, readiness and metrics. Needs the ``streaming`` extra (``pipeline-common[streaming]``).
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import faust
from faust.types import EventT, TableT, TopicT
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import FAILED_EVENT_TYPE, TranscriptFailed, failed_event_id
from pipeline_common.dlq import dlq_headers
from pipeline_common.kafka import ensure_topics_when_reachable
from pipeline_common.kafka_preflight import KafkaConnectionRefused, check_kafka_connection
from pipeline_common.logging import configure_logging, faust_logging_config, get_logger
from pipeline_common.retries import RetryDue
from pipeline_common.settings import ConfigError, KafkaSettings, load_settings
from pipeline_common.worker.faust_patches import (
    apply_faust_patches,
    never_commit_past_in_flight,
    no_stale_records_across_a_seek,
)
from pipeline_common.worker.message import Inbound
from pipeline_common.worker_settings import FaustWorker, WorkerSettings

__all__ = [
    "add_operational_pages",
    "add_worker_timers",
    "apply_faust_patches",
    "create_faust_app",
    "dead_letter",
    "inbound",
    "never_commit_past_in_flight",
    "no_stale_records_across_a_seek",
    "raw_topic",
    "recordings_table",
    "send_durably",
]

_log = get_logger(__name__)


# faust's --loglevel spells two of them its own way
FAUST_LOG_LEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "INFO": "info", "DEBUG": "debug"}


def create_faust_app(settings: KafkaSettings, worker: FaustWorker) -> faust.App:
    """A faust app configured the way every worker here needs it: durable, idempotent writes, Table state rebuilt from
    its changelog, our own logging, and a session timeout that moves a crashed worker's partitions on soon. Applies
    the faust patches first (refusing a faust version they were not written for)."""
    apply_faust_patches()
    return faust.App(
        worker.app_id,
        broker=faust_broker_urls(settings),
        datadir=worker.data_dir,
        store="memory://",  # the Table's durable copy is its changelog topic; memory is rebuilt from it on start
        topic_partitions=worker.partitions,
        topic_replication_factor=settings.kafka_topic_replication_factor,
        topic_allow_declare=settings.kafka_create_topics,
        producer_acks=-1,
        consumer_auto_offset_reset=worker.auto_offset_reset,
        web_host=worker.web_host,
        web_port=worker.web_port,
        web_in_thread=False,
        stream_wait_empty=True,  # on shutdown, finish the events in hand before committing
        table_standby_replicas=settings.kafka_table_standby_replicas,  # a failover resumes from a warm copy
        broker_session_timeout=worker.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, worker.session_timeout_seconds / 3),
        logging_config=None,
        broker_credentials=broker_credentials(settings),
    )


def broker_credentials(settings: KafkaSettings) -> faust.types.auth.CredentialsT | None:
    """The faust form of the one Kafka connection configuration (the aiokafka clients get the same context)."""
    context = settings.kafka_ssl_context()
    if settings.kafka_uses_sasl:
        return faust.SASLCredentials(
            username=settings.kafka_sasl_user,
            password=settings.kafka_sasl_secret(),
            ssl_context=context,  # None for SASL_PLAINTEXT; a context makes faust say SASL_SSL
            mechanism=settings.kafka_sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def recordings_table(app: faust.App) -> TableT[str, Any]:
    """The worker's per-recording state: JSON values keyed by recording id, co-partitioned with its input topics
    (the app's ``topic_partitions``) so a recording's events and its state live in the same worker."""
    table: TableT[str, Any] = app.Table(
        "recordings",
        default=None,
        partitions=app.conf.topic_partitions,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="json"),
    )
    return table


Settings = TypeVar("Settings", bound=WorkerSettings)


def worker_main(service: str, settings_type: type[Settings], create_app: Callable[[Settings], faust.App]) -> int:
    """``python -m <service>``: load the settings (a wrong one exits 2 naming it), then run the worker."""
    try:
        settings = load_settings(settings_type)
        if settings.recall_api_key is None:
            raise ConfigError([f"RECALL_API_KEY: Field required (the {service} calls Recall's API)"])
        configure_logging(settings, service=service)
        app = create_app(settings)
        # faust's Worker replaces the root handler on start: hand it ours, so every line stays one JSON object.
        app.conf.logging_config = faust_logging_config()
        asyncio.run(check_kafka_connection(settings))  # a refused connection never heals: exit now, say why
    except (ConfigError, ValueError, KafkaConnectionRefused) as error:
        print(f"{service}: {error}", file=sys.stderr)
        return 2
    run_worker(app, settings, log_level=settings.log_level, worker=settings.faust_worker())
    return 0


def run_worker(app: faust.App, settings: KafkaSettings, *, log_level: str, worker: FaustWorker) -> None:
    """Create the registry's missing topics (when allowed), then run ``app`` as a faust worker until it stops."""
    if settings.kafka_create_topics:
        asyncio.run(ensure_topics_when_reachable(settings))
    sys.argv = [
        sys.argv[0],
        "--quiet",  # no banner table on stdout: every line a process writes is a log record
        "worker",
        "--loglevel",
        FAUST_LOG_LEVELS[log_level],
        "--web-host",
        worker.web_host,
        "--web-port",
        str(worker.web_port),
    ]
    app.main()


def faust_broker_urls(settings: KafkaSettings) -> list[str]:
    return [f"kafka://{server}" for server in settings.kafka_bootstrap_servers]


def raw_topic(app: faust.App, *names: str, **options: Any) -> TopicT:
    """A topic whose keys and values stay bytes: we parse them ourselves (and dead-letter what does not parse)."""
    topic: TopicT = app.topic(*names, key_serializer="raw", value_serializer="raw", **options)
    return topic


async def send_durably(topic: TopicT, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    """Send and wait for the broker's acknowledgement, so the source offset is committed only after the output.

    Straight through the app's producer: ``Topic.send`` from inside an agent goes through faust's channel machinery,
    which in this faust version was seen to deliver the same record twice.
    """
    await topic.app.producer.send_and_wait(topic.get_topic_name(), key, value, None, None, headers)


def inbound(event: EventT[Any]) -> Inbound:
    """faust's event as the per-event logic sees it."""
    message = event.message
    raw = message.headers or []
    pairs = list(raw.items()) if isinstance(raw, Mapping) else list(raw)
    return Inbound(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value or b"",
        headers=[
            (str(name), value if isinstance(value, bytes) else str(value or "").encode()) for name, value in pairs
        ],
    )


async def dead_letter(dlq: TopicT, message: Inbound, *, reason: str, service: str) -> None:
    """Send the message unchanged to ``dlq`` with the reason and its origin in headers."""
    headers = dlq_headers(
        list(message.headers),
        reason=reason,
        service=service,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
    await send_durably(dlq, message.key, message.value, headers)
    _log.error(
        "message sent to the dead-letter queue",
        dlq=dlq.get_topic_name(),
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        reason=reason,
    )


def add_operational_pages(
    app: faust.App,
    registry: CollectorRegistry,
    *,
    extra_readiness: Callable[[], str | None] | None = None,
    ready_gauge: str | None = None,
) -> None:
    """``/healthz`` (the event loop answers), ``/readyz`` (table state recovered, not rebalancing, and whatever
    ``extra_readiness`` adds: it returns a reason when not ready) and ``/metrics`` (Prometheus). With ``ready_gauge``,
    the metrics carry a gauge of that name: 1 when ready, 0 when not, judged at scrape time like ``/readyz``."""

    def not_ready_reason() -> str | None:
        if not app.tables.recovery.completed.is_set():  # type: ignore[attr-defined]
            return "recovering table state"
        if app.rebalancing:
            return "rebalancing"
        return extra_readiness() if extra_readiness is not None else None

    if ready_gauge is not None:
        registry.register(ReadinessCollector(ready_gauge, not_ready_reason))

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "alive"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        reason = not_ready_reason()
        if reason is None:
            return web.json({"status": "ready"})
        return web.json({"status": "not_ready", "reason": reason}, status=503)

    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        return web.bytes(generate_latest(registry), content_type=CONTENT_TYPE_LATEST.split(";")[0])


class ReadinessCollector(Collector):
    """A 0/1 gauge of the worker's readiness, computed when Prometheus scrapes."""

    def __init__(self, name: str, not_ready_reason: Callable[[], str | None]) -> None:
        self.name = name
        self.not_ready_reason = not_ready_reason

    def _family(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, "1 when the worker is ready (table state recovered, not rebalancing)")

    def describe(self) -> Iterator[Metric]:
        yield self._family()

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        family.add_metric([], 1.0 if self.not_ready_reason() is None else 0.0)
        yield family


@dataclass(frozen=True)
class WorkerOutputs:
    """What both workers send besides their own results: a due retry to their retries topic, a message to their DLQ,
    and a ``TranscriptFailed`` (its id deterministic, so a re-emission after a crash can be dropped downstream)."""

    service: str
    retries: TopicT
    dlq: TopicT
    failed: TopicT

    async def retry(self, due: RetryDue) -> None:
        await send_durably(self.retries, due.recording_id.encode(), due.dumps(), [])

    async def dead_letter(self, message: Inbound, reason: str) -> None:
        await dead_letter(self.dlq, message, reason=reason, service=self.service)

    async def transcript_failed(self, failed: TranscriptFailed) -> None:
        attributes = CloudEventAttributes(
            id=failed_event_id(failed.recording_id),
            source=f"urn:recall-pipeline:{self.service}",
            type=FAILED_EVENT_TYPE,
            time=failed.failed_at,
            subject=failed.recording_id,
        )
        value = failed.model_dump_json().encode()
        await send_durably(self.failed, failed.recording_id.encode(), value, build_headers(attributes))


class EventHandler(Protocol):
    """The per-event side of a worker core (:class:`~pipeline_common.worker.base.WorkerBase`) that
    :func:`add_worker_agents` wires to faust."""

    async def on_event(self, message: Inbound) -> None: ...
    async def on_retry(self, message: Inbound) -> None: ...
    async def dispatch_due_retries(self) -> Any: ...
    async def sweep(self) -> None: ...


def add_worker_agents(
    app: faust.App,
    worker: EventHandler,
    *,
    events: TopicT,
    events_agent: str,
    retries: TopicT,
    concurrency: int = 1,
    scan_seconds: float,
    sweep_seconds: float,
) -> None:
    """A worker's two agents (its input events and its own retries, each handed to the worker as :class:`Inbound`)
    and its timer (:func:`add_worker_timers`)."""

    @app.agent(events, name=events_agent, concurrency=concurrency)
    async def handle_events(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await worker.on_event(inbound(event))

    @app.agent(retries, name="retries", concurrency=concurrency)
    async def handle_retries(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await worker.on_retry(inbound(event))

    add_worker_timers(
        app,
        scan_seconds=scan_seconds,
        sweep_seconds=sweep_seconds,
        dispatch=worker.dispatch_due_retries,
        sweep=worker.sweep,
    )


def add_worker_timers(
    app: faust.App,
    *,
    scan_seconds: float,
    sweep_seconds: float,
    dispatch: Callable[[], Awaitable[Any]],
    sweep: Callable[[], Awaitable[None]],
) -> None:
    """One timer per worker, every ``scan_seconds``: wake the due retries (read from the due-index), and sweep the
    Table (deadlines, unsent terminal events, retention, and a rebuilt due-index) at start-up, after every change of
    the partitions this worker owns, and every ``sweep_seconds``. Nothing runs while the Table is being recovered or
    a rebalance is under way: the state is incomplete then."""
    last: dict[str, Any] = {"at": None, "assigned": frozenset()}

    @app.timer(interval=scan_seconds, on_leader=False)  # type: ignore[untyped-decorator]
    async def worker_timer() -> None:
        if not app.tables.recovery.completed.is_set() or app.rebalancing:  # type: ignore[attr-defined]
            return
        assigned = frozenset(app.assignor.assigned_actives())
        clock = time.monotonic()
        if last["at"] is None or assigned != last["assigned"] or clock - last["at"] >= sweep_seconds:
            last.update(at=clock, assigned=assigned)
            await sweep()
        await dispatch()
