"""What every faust-streaming service here does the same way: connect, write durably, dead-letter, and answer
health, readiness and metrics. Needs the ``streaming`` extra (``pipeline-common[streaming]``).
"""

from __future__ import annotations

import asyncio
import functools
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

import faust
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import EventT, TableT, TopicT
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from pipeline_common.dlq import dlq_headers
from pipeline_common.kafka import ensure_topics_when_reachable
from pipeline_common.kafka_preflight import KafkaConnectionRefused, check_kafka_connection
from pipeline_common.logging import configure_logging, get_logger
from pipeline_common.settings import ConfigError, FaustWorker, KafkaSettings, WorkerSettings, load_settings

_log = get_logger(__name__)


# faust's --loglevel spells two of them its own way
FAUST_LOG_LEVELS = {"CRITICAL": "crit", "ERROR": "error", "WARNING": "warn", "INFO": "info", "DEBUG": "debug"}


def create_faust_app(settings: KafkaSettings, worker: FaustWorker) -> faust.App:
    """A faust app configured the way every worker here needs it: durable writes, Table state rebuilt from its
    changelog, our own logging, and a session timeout that moves a crashed worker's partitions on soon."""
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


async def dead_letter(dlq: TopicT, event: EventT[Any], *, reason: str, service: str) -> None:
    """Send the event's message unchanged to ``dlq`` with the reason and its origin in headers."""
    message = event.message
    original = message.headers or []
    headers = dlq_headers(
        list(original.items()) if isinstance(original, Mapping) else list(original),
        reason=reason,
        service=service,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
    )
    await send_durably(dlq, message.key, message.value or b"", headers)
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


def never_commit_past_in_flight() -> None:
    """Make faust never commit a partition's offset past a message an agent is still processing.

    faust-streaming 0.15's ``Consumer._new_offset`` (upstream issue faust-streaming/faust#606, fix proposed in #707)
    computes the offset to commit from the acked offsets, and lets one missing offset at their head through: with the
    committed offset N (the next to read) and N+1, N+2 acked while N is still being processed (agent concurrency > 1:
    a slow transcript next to fast ones), it commits N+3. A crash before N is done then loses N for good: it is never
    redelivered. Found by ``make chaos`` (a fetcher SIGKILL lost a transcript.done). The wrapper commits nothing for
    the partition while one of its messages at or after the committed offset, below the acked ones, is in flight.
    Idempotent; applied when this module is imported, so by every service and test that builds a faust app here.
    """
    original = FaustConsumer._new_offset
    if getattr(original, "_never_past_in_flight", False):
        return

    @functools.wraps(original)
    def _new_offset(self: Any, tp: Any) -> int | None:
        acked = self._acked[tp]
        if acked:
            head = min(acked)
            committed = self._committed_offset[tp]
            for message in list(self._unacked_messages):
                if (
                    message.tp == tp
                    and not message.acked
                    and message.offset < head
                    and (committed is None or message.offset >= committed)
                ):
                    return None
        offset: int | None = original(self, tp)
        return offset

    _new_offset._never_past_in_flight = True  # type: ignore[attr-defined]
    FaustConsumer._new_offset = _new_offset  # type: ignore[method-assign]


def no_stale_records_across_a_seek() -> None:
    """Stop faust's consumer flow while it seeks its partitions back to their committed offsets.

    A restarted faust-streaming 0.15 worker resumes its stream partitions, then seeks them to the committed offsets
    (``Recovery.on_recovery_completed``), with the flow already running for the table recovery. Records fetched in
    between keep flowing into the agents while the seek runs, and the consumer's read-offset bookkeeping then goes
    wrong: a stale record above the new read offset is taken for a gap and the offsets below it are acked unprocessed
    (``Consumer._add_gap``), and the records fetched again from the committed offset are dropped as already read
    ("DROPPED MESSAGE ROFF"). Found by ``make chaos``: a SIGKILLed transcriber, restarted while webhooks were arriving,
    never handled one ``recording.done``. With the flow stopped no record is handed over during the seek, so the
    agents see every record from the committed offset on, each once more at most. The flow is resumed only when
    nothing else (a rebalance) stopped it in the meantime.

    Records the stopped flow discards are read again only if the seek moves the partition back to them, and
    aiokafka's ``seek_to_committed`` leaves a partition with no committed offset (or 0) where it is: such a partition
    is sought to its beginning too (with ``auto_offset_reset=earliest``, ours; with ``latest`` the worker has chosen
    not to read what it did not see). Idempotent; applied on import like the one above.
    """
    original_seek = FaustConsumer.perform_seek
    if getattr(original_seek, "_stops_the_flow", False):
        return
    original_stop = FaustConsumer.stop_flow
    original_seek_to_committed = AIOKafkaConsumerThread.seek_to_committed

    @functools.wraps(original_seek_to_committed)
    async def seek_to_committed(self: Any) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await original_seek_to_committed(self)
        if self.app.conf.consumer_auto_offset_reset == "earliest":
            changelogs = self.app.tables.changelog_topics
            unmoved = [tp for tp, offset in committed.items() if not offset or offset < 0]
            unmoved = [tp for tp in unmoved if tp.topic not in changelogs]  # recovery positions those itself
            if unmoved:
                await self.seek_to_beginning(*unmoved)
        return committed

    @functools.wraps(original_stop)
    def stop_flow(self: Any) -> None:
        self._flow_stops = getattr(self, "_flow_stops", 0) + 1
        original_stop(self)

    @functools.wraps(original_seek)
    async def perform_seek(self: Any) -> None:
        was_flowing = self.flow_active
        self.stop_flow()
        stops = self._flow_stops
        try:
            await original_seek(self)
        finally:
            if was_flowing and self._flow_stops == stops:
                self.resume_flow()

    perform_seek._stops_the_flow = True  # type: ignore[attr-defined]
    FaustConsumer.stop_flow = stop_flow  # type: ignore[method-assign]
    FaustConsumer.perform_seek = perform_seek  # type: ignore[method-assign]
    AIOKafkaConsumerThread.seek_to_committed = seek_to_committed  # type: ignore[method-assign]


never_commit_past_in_flight()
no_stale_records_across_a_seek()
