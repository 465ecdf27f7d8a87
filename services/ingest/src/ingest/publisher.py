"""The durable Kafka write behind every 2xx: an idempotent ``acks=all`` producer, a bounded wait, and readiness.

Kafka unreachable at start is not a crash: the publisher keeps trying in the background and reports not ready, so
Kubernetes stops routing webhooks here (Recall retries them) instead of restarting the pod in a loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    InvalidProducerIdMapping,
    KafkaError,
    MessageSizeTooLargeError,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    RecordTooLargeError,
)

from pipeline_common.kafka import durable_producer, ensure_topics
from pipeline_common.logging import get_logger
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import REGISTRY

_log = get_logger(__name__)

#: Errors after which this idempotent producer's state (producer id, epoch, sequence numbers) no longer matches the
#: broker's (e.g. after a broker restart lost its producer state): every later write would fail the same way, so the
#: producer is dropped and a fresh one (a new producer id) connected.
FATAL_TO_THE_PRODUCER = (OutOfOrderSequenceNumber, InvalidProducerEpoch, InvalidProducerIdMapping, ProducerFenced)


class PublishFailed(Exception):
    """The event was not acknowledged by Kafka in time (or at all): it must not be reported as accepted."""


class RecordTooLarge(PublishFailed):
    """Kafka will never take this record (producer or topic size limit): not an outage, and retrying cannot help."""


class KafkaPublisher:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        required_topics: Sequence[str],
        produce_timeout: float,
        check_interval: float,
        max_request_bytes: int | None = None,
        producers: int = 1,
        linger_ms: int = 0,
    ) -> None:
        self._settings = settings
        self._producer_count = producers
        self._linger_ms = linger_ms
        self._max_request_bytes = max_request_bytes
        self._required_topics = frozenset(required_topics)
        self._produce_timeout = produce_timeout
        self._check_interval = check_interval
        # INGEST_KAFKA_PRODUCERS of them once connected, () when not; the first also carries unkeyed records and
        # answers the metadata checks.
        self._producers: tuple[AIOKafkaProducer, ...] = ()
        self._ready = False
        self._reason = "starting"
        self._task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()  # producers dropped after a fatal error, being closed

    @property
    def ready(self) -> bool:
        return self._ready

    @property
    def reason(self) -> str:
        """Why the publisher is not ready (for /readyz); "ready" when it is."""
        return "ready" if self._ready else self._reason

    async def start(self) -> None:
        """Return at once; connecting and readiness checks continue in the background."""
        self._task = asyncio.create_task(self._maintain(), name="kafka-publisher")

    async def stop(self, grace_seconds: float) -> None:
        """Flush what is buffered and close, within ``grace_seconds``."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._producers:
            try:
                async with asyncio.timeout(grace_seconds):
                    await asyncio.gather(*(producer.stop() for producer in self._producers))
            except (TimeoutError, KafkaError) as error:
                _log.warning("producer did not flush before shutdown", error=repr(error))
        self._ready = False
        self._reason = "stopped"

    async def publish(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> float:
        """Write one event and wait for the broker's acknowledgement; return the latency in seconds."""
        producers = self._producers
        if not producers:
            raise PublishFailed(f"Kafka producer not connected ({self._reason})")
        # By key, so the events of one recording keep their order (one producer, one partition, in sequence).
        producer = producers[zlib.crc32(key) % len(producers)] if key is not None else producers[0]
        started = time.perf_counter()
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for wraps the coroutine in a new Task on every call.
            async with asyncio.timeout(self._produce_timeout):
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        except TimeoutError:
            self._mark_unready("produce timed out")
            raise PublishFailed(f"no acknowledgement from Kafka within {self._produce_timeout:g}s") from None
        except (MessageSizeTooLargeError, RecordTooLargeError) as error:
            # One record too large says nothing about the cluster: stay ready.
            raise RecordTooLarge(f"Kafka refused the record as too large: {type(error).__name__}") from None
        except KafkaError as error:
            self._mark_unready(f"produce failed: {type(error).__name__}")
            if isinstance(error, FATAL_TO_THE_PRODUCER) and producer in self._producers:
                self._replace_producer(error)
            raise PublishFailed(f"Kafka refused the write: {type(error).__name__}") from None
        return time.perf_counter() - started

    def _replace_producer(self, error: KafkaError) -> None:
        """Drop the producers (closed in the background); the maintenance loop connects new ones."""
        _log.warning("kafka producer state broken; replacing the producer", error=type(error).__name__)
        dropped, self._producers = self._producers, ()

        async def close() -> None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(10):
                    await asyncio.gather(*(producer.stop() for producer in dropped), return_exceptions=True)

        task = asyncio.create_task(close(), name="kafka-producer-close")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _mark_unready(self, reason: str) -> None:
        if self._ready:
            _log.warning("kafka not ready", reason=reason)
        self._ready = False
        self._reason = reason

    async def _maintain(self) -> None:
        backoff = 0.5
        while True:
            try:
                if not self._producers:
                    await self._connect()
                await self._check()
                backoff = 0.5
                await asyncio.sleep(self._check_interval)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # anything here means "not ready yet"; keep trying, never crash the app
                self._mark_unready(f"{type(error).__name__}: {error}"[:200])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _connect(self) -> None:
        options: dict[str, int] = {
            "request_timeout_ms": max(int(self._produce_timeout * 1000), 1000),
            "linger_ms": self._linger_ms,
        }
        if self._max_request_bytes is not None:
            options["max_request_size"] = self._max_request_bytes
        producers = [durable_producer(self._settings, **options) for _ in range(self._producer_count)]
        try:
            for producer in producers:
                await producer.start()
        except BaseException:
            for producer in producers:
                with contextlib.suppress(Exception):
                    await producer.stop()
            raise
        self._producers = tuple(producers)
        _log.info("kafka producer connected", bootstrap_servers=self._settings.kafka_bootstrap_servers)

    async def _missing_topics(self) -> frozenset[str]:
        """Ask the cluster (not the producer's cache) which required topics exist: this is also the liveness probe
        of the connection, since it fails when no broker answers."""
        assert self._producers
        metadata = await asyncio.wait_for(
            self._producers[0].client.fetch_all_metadata(), timeout=max(self._check_interval, 3.0)
        )
        return self._required_topics - set(metadata.topics())

    async def _check(self) -> None:
        assert self._producers
        missing = await self._missing_topics()
        if missing and self._settings.kafka_create_topics:
            await ensure_topics(self._settings, [spec for spec in REGISTRY if spec.name in missing])
            missing = await self._missing_topics()
        if missing:
            self._mark_unready(f"topics missing: {', '.join(sorted(missing))}")
            return
        if not self._ready:
            _log.info("kafka ready")
        self._ready = True
