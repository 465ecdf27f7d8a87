"""Produce, consume and create topics on the test broker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.waiting import wait_for


@dataclass
class KafkaTestClient:
    bootstrap_servers: str

    async def create_topic(self, name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=config or {})])
        finally:
            await admin.close()
        return name

    async def list_topics(self) -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    async def describe_topic_configs(self, name: str) -> dict[str, str]:
        from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            responses = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        finally:
            await admin.close()
        entries = responses[0].resources[0][4]
        return {entry[0]: entry[1] for entry in entries}

    async def committed_offsets(self, group: str) -> dict[TopicPartition, int]:
        """The offsets ``group`` has committed, by partition."""
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap_servers)
        await admin.start()
        try:
            offsets = await admin.list_consumer_group_offsets(group)
        finally:
            await admin.close()
        return {tp: metadata.offset for tp, metadata in offsets.items()}

    async def commit_every_partition(
        self, group: str, topic: str, partitions: int, harmless: Callable[[str], bytes], timeout: float = 60
    ) -> None:
        """Have a running worker's ``group`` commit an offset on every partition of ``topic``: one ``harmless(key)``
        record per partition, waited for until committed. A worker restarted with ``auto_offset_reset=earliest`` then
        reads each partition from where this one was, as the group of a long-running deployment would, not from the
        start of a topic the whole test session writes to (reading that history can take longer than a test waits)."""
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        await producer.start()
        try:
            sent: dict[TopicPartition, int] = {}
            for partition in range(partitions):
                key = f"prime-{uuid.uuid4().hex[:10]}"
                metadata = await producer.send_and_wait(topic, harmless(key), key=key.encode(), partition=partition)
                sent[TopicPartition(topic, partition)] = metadata.offset
        finally:
            await producer.stop()

        async def committed_past_each() -> bool:
            committed = await self.committed_offsets(group)
            return all(committed.get(tp, -1) > offset for tp, offset in sent.items())

        await wait_for(committed_past_each, timeout=timeout, interval=0.2, message=f"{group} committed all of {topic}")

    async def produce(
        self,
        topic: str,
        messages: Sequence[tuple[bytes | None, bytes]],
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all")
        await producer.start()
        try:
            for key, value in messages:
                await producer.send_and_wait(topic, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def consume(
        self,
        topic: str,
        *,
        count: int | None = None,
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool] | None = None,
        timeout: float = 30.0,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Read ``topic`` from the beginning until ``count`` records (or ``until`` holds); fail after ``timeout``."""
        if count is None and until is None:
            raise ValueError("say how many records to wait for (count) or what to wait for (until)")
        consumer = AIOKafkaConsumer(
            topic,
            bootstrap_servers=self.bootstrap_servers,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            isolation_level="read_committed",  # transcripts.ready is written in transactions
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        deadline = time.monotonic() + timeout
        try:
            while True:
                if (count is not None and len(records) >= count) or (until is not None and until(records)):
                    return records
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count if count is not None else 'matching'} records on {topic} "
                        f"within {timeout:.0f}s, got {len(records)}"
                    )
                batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
                for partition_records in batch.values():
                    records.extend(partition_records)
        finally:
            await consumer.stop()

    async def end_offsets(self, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap_servers)
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(topic) or set()
            if not partitions:
                await consumer._client.force_metadata_update()
                partitions = consumer.partitions_for_topic(topic) or set()
            from aiokafka import TopicPartition

            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            offsets = await consumer.end_offsets(tps)
            return {tp.partition: offset for tp, offset in offsets.items()}
        finally:
            await consumer.stop()
