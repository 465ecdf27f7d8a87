"""Fencing of zombie fetchers: ``transcripts.ready`` is sent in a Kafka transaction whose ``transactional_id`` is tied
to the transcript's input partition (``<app id>-ready-<partition>``), the pre-KIP-447 exactly-once pattern.

A replica that lost its partition (frozen past its session timeout, or still downloading during a rebalance) keeps
working on what it held. The replica that took the partition over initialises the same ``transactional_id`` before it
looks at the store: the broker bumps the producer epoch, aborts the old replica's open transaction and refuses its
later ones (``ProducerFenced``). So for any two attempts at one transcript, either the later one started after the
earlier one's event was committed (and then finds the manifest and the event: docs/fetcher.md) or the earlier one is
fenced. That needs three things, kept here and in :mod:`fetcher.publish`:

- a lease (a producer whose ``init_transactions`` is done) is taken *before* the attempt reads the store;
- the event is sent with that lease's producer, never with a newer one taken meanwhile (a broken lease fails the
  attempt, which is retried with a fresh lease);
- readers of ``transcripts.ready`` use ``isolation_level=read_committed`` (an aborted event stays in the log).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from typing import Any, Final

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.partitioner import murmur2

from pipeline_common.acls import ready_transactional_id
from pipeline_common.logging import get_logger
from pipeline_common.settings import KafkaSettings

_log = get_logger("fetcher.fence")
INIT_TIMEOUT_SECONDS: Final = 30.0


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner (murmur2, as the Java client and aiokafka compute it)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


async def count_partitions(settings: KafkaSettings, topic: str) -> int:
    """How many partitions ``topic`` has, asked of the cluster once; a missing topic is an error, not zero."""
    admin = AIOKafkaAdminClient(**settings.aiokafka_connection_kwargs(), request_timeout_ms=15_000)
    await admin.start()
    try:
        described: Any = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = len(described[0]["partitions"]) if described and described[0].get("partitions") else 0
    if partitions < 1:
        raise RuntimeError(f"topic {topic} does not exist (or has no partitions)")
    return partitions


class LeaseLost(RuntimeError):
    """The lease's producer failed or was fenced: this attempt may not announce; a new attempt takes a new lease."""


class Lease:
    """A transactional producer initialised for one input partition, and the transactions sent through it."""

    def __init__(self, producer: AIOKafkaProducer, partition: int, transactional_id: str) -> None:
        self.producer = producer
        self.partition = partition
        self.transactional_id = transactional_id
        self.broken = False
        self._lock = asyncio.Lock()  # one transaction at a time per producer

    async def send(
        self, topic: str, *, key: bytes, value: bytes, partition: int, headers: Sequence[tuple[str, bytes]]
    ) -> int:
        """Send one record in its own transaction; its offset once committed."""
        async with self._lock:
            if self.broken:
                raise LeaseLost(f"the producer of {self.transactional_id} failed or was fenced; not sending")
            try:
                async with self.producer.transaction():
                    metadata = await self.producer.send_and_wait(
                        topic, value=value, key=key, partition=partition, headers=list(headers)
                    )
            except BaseException as error:
                self.broken = True
                _log.warning(
                    "announcement not committed; the lease is dropped",
                    transactional_id=self.transactional_id,
                    error=f"{type(error).__name__}: {error}",
                )
                raise
            return int(metadata.offset)

    async def close(self) -> None:
        try:
            await self.producer.stop()
        except Exception as error:
            _log.debug("could not stop a dropped producer", error=repr(error))


class Fence:
    """One :class:`Lease` per input partition this replica works on, made on first use and after a failure."""

    def __init__(self, settings: KafkaSettings, *, app_id: str, source_topic: str) -> None:
        self._settings = settings
        self._app_id = app_id
        self._source_topic = source_topic
        self._partitions: int | None = None
        self._leases: dict[int, Lease] = {}
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def _source_partitions(self) -> int:
        if self._partitions is None:
            self._partitions = await count_partitions(self._settings, self._source_topic)
        return self._partitions

    async def lease(self, recording_id: str) -> Lease:
        """The lease of the recording's input partition; initialising it fences every older holder."""
        partition = partition_for(recording_id.encode(), await self._source_partitions())
        async with self._locks[partition]:
            lease = self._leases.get(partition)
            if lease is not None and not lease.broken:
                return lease
            if lease is not None:
                del self._leases[partition]
                await lease.close()
            txn_id = ready_transactional_id(self._app_id, partition)
            producer = AIOKafkaProducer(
                **self._settings.aiokafka_connection_kwargs(),
                transactional_id=txn_id,
                enable_idempotence=True,
                acks="all",
            )
            try:
                async with asyncio.timeout(INIT_TIMEOUT_SECONDS):
                    await producer.start()  # init_transactions: bumps the epoch, aborts the old holder's transaction
            except BaseException:
                await Lease(producer, partition, txn_id).close()
                raise
            _log.info("announcement lease taken", transactional_id=txn_id)
            lease = Lease(producer, partition, txn_id)
            self._leases[partition] = lease
            return lease

    async def close(self) -> None:
        leases, self._leases = list(self._leases.values()), {}
        for lease in leases:
            await lease.close()
