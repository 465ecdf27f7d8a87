"""Reading Kafka the way an operator needs to: whole topics up to "now" (a snapshot of the end offsets), or following
a topic, always without a consumer group (the CLI never commits offsets, so it never disturbs the services)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Final, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from pipeline_common.kafka import durable_producer
from pipeline_common.kafka_preflight import KafkaConnectionRefused, check_kafka_connection
from pipeline_common.settings import KafkaSettings

CLIENT_ID: Final = "recall-pipeline-cli"
POLL_MS: Final = 200


class KafkaUnavailable(Exception):
    """The cluster could not be reached or answered with an error. ``str()`` says what and where."""


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    timestamp_ms: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]

    @property
    def time(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ms / 1000, tz=UTC)

    @property
    def key_text(self) -> str | None:
        return None if self.key is None else self.key.decode("utf-8", "replace")

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("utf-8", "replace")
        return None

    @classmethod
    def from_consumer(cls, record: Any) -> Record:
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            timestamp_ms=record.timestamp,
            key=record.key,
            value=record.value,
            headers=tuple((name, value or b"") for name, value in record.headers or ()),
        )


def servers(settings: KafkaSettings) -> str:
    return ",".join(settings.kafka_bootstrap_servers)


async def unavailable(settings: KafkaSettings, error: BaseException) -> KafkaUnavailable:
    """The error to show: the broker's refusal when it refused these settings (a wrong password, an untrusted CA,
    plaintext on a TLS port: the variable to fix), else that it could not be reached."""
    try:
        await check_kafka_connection(settings, wait_seconds=5.0)
    except KafkaConnectionRefused as refused:
        return KafkaUnavailable(str(refused))
    return KafkaUnavailable(f"cannot reach Kafka at {servers(settings)}: {error}")


class KafkaReader:
    """``async with KafkaReader(settings) as kafka: ...``: one group-less consumer plus the cluster's topic list."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._consumer = AIOKafkaConsumer(
            **{**settings.aiokafka_connection_kwargs(), "client_id": CLIENT_ID},
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",  # transcripts.ready is written in transactions
            request_timeout_ms=15_000,
        )
        self._partitions: dict[str, list[int]] = {}

    async def __aenter__(self) -> Self:
        try:
            await self._consumer.start()
            # One metadata request for every topic: which exist, and their partitions (no topic is auto-created).
            cluster = await self._consumer._client.fetch_all_metadata()
        except (KafkaError, OSError) as error:
            await self._consumer.stop()
            raise await unavailable(self.settings, error) from None
        except BaseException:  # cancelled by a deadline while connecting: do not leak the connection
            await self._consumer.stop()
            raise
        self._partitions = {
            topic: sorted(cluster.partitions_for_topic(topic) or ())
            for topic in cluster.topics(exclude_internal_topics=True)
        }
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    @property
    def topics(self) -> set[str]:
        return set(self._partitions)

    def exists(self, topic: str) -> bool:
        return topic in self._partitions

    async def snapshot(self, topics: Sequence[str]) -> AsyncIterator[Record]:
        """Every record of ``topics`` from the beginning up to their end offsets as of now, partition by partition
        in offset order (records written meanwhile are not waited for)."""
        partitions = [TopicPartition(topic, p) for topic in topics for p in self._partitions.get(topic, ())]
        if not partitions:
            return
        self._consumer.assign(partitions)
        begin = await self._consumer.beginning_offsets(partitions)
        end = await self._consumer.end_offsets(partitions)
        pending = {tp: end[tp] for tp in partitions if end[tp] > begin[tp]}
        for tp in partitions:
            self._consumer.seek(tp, begin[tp])
        while pending:
            batch = await self._consumer.getmany(*pending, timeout_ms=POLL_MS)
            for tp, records in batch.items():
                for record in records:
                    if record.offset < pending.get(tp, -1):
                        yield Record.from_consumer(record)
            for tp in list(pending):
                # position, not the last offset seen: compaction and transaction markers leave gaps.
                if await self._consumer.position(tp) >= pending[tp]:
                    del pending[tp]

    async def follow(
        self, topic: str, *, from_beginning: bool, on_ready: Callable[[], None] | None = None
    ) -> AsyncIterator[Record]:
        """The records of ``topic`` as they arrive (from the beginning, or from the end as of this call).
        ``on_ready`` is called once the start positions are known: a record written after that is not missed."""
        partitions = [TopicPartition(topic, p) for p in self._partitions.get(topic, ())]
        self._consumer.assign(partitions)
        if from_beginning:
            await self._consumer.seek_to_beginning(*partitions)
        else:
            await self._consumer.seek_to_end(*partitions)
        for tp in partitions:
            await self._consumer.position(tp)
        if on_ready is not None:
            on_ready()
        while True:
            batch = await self._consumer.getmany(timeout_ms=POLL_MS)
            for records in batch.values():
                for record in records:
                    yield Record.from_consumer(record)


class KafkaWriter:
    """``async with KafkaWriter(settings) as writer: await writer.send(...)``: the pipeline's durable producer
    (idempotent, ``acks=all``), so a send that returns is written."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings
        self._producer = durable_producer(settings, client_id=CLIENT_ID)

    async def __aenter__(self) -> Self:
        try:
            await self._producer.start()
        except (KafkaError, OSError) as error:
            await self._producer.stop()
            raise await unavailable(self.settings, error) from None
        except BaseException:
            await self._producer.stop()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self._producer.stop()

    async def send(
        self, topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]]
    ) -> tuple[int, int]:
        """Write one record (partitioned by key, as the pipeline's producers do); its (partition, offset)."""
        metadata = await self._producer.send_and_wait(topic, value=value, key=key, headers=headers)
        return int(metadata.partition), int(metadata.offset)
