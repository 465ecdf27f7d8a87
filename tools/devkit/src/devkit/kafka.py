"""Reading Kafka from the outside, as an auditor would: every record of some topics up to their end, end offsets,
consumer groups' committed offsets and lag. For the harness (chaos ledger, demo, bench) and the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

from pipeline_common.cloudevents import header_value
from pipeline_common.kafka import connection_kwargs


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    ce_id: str | None


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    partitions = await all_partitions(bootstrap, topics)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(**connection_kwargs(bootstrap), enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await stop_consumer(consumer)


async def all_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` that exist, as the cluster describes them."""
    admin = AIOKafkaAdminClient(**connection_kwargs(bootstrap), request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [topic for topic in dict.fromkeys(topics) if topic in existing]
        described: Any = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    return sorted(
        TopicPartition(item["topic"], partition["partition"])
        for item in described
        for partition in item.get("partitions") or ()
    )


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka cancels a task it started in start(); if that task never ran, stop() raises CancelledError.
    await asyncio.sleep(0)
    await consumer.stop()


async def read_topics(
    bootstrap: str, topics: Iterable[str], *, start: dict[TopicPartition, int] | None = None
) -> list[Record]:
    """Every record of ``topics`` (from ``start``, else the beginning) up to their end offsets now."""
    records: list[Record] = []
    partitions = await all_partitions(bootstrap, topics)
    if not partitions:
        return records
    consumer = AIOKafkaConsumer(
        **connection_kwargs(bootstrap),
        enable_auto_commit=False,
        max_partition_fetch_bytes=4 << 20,
        # transcripts.ready is written in transactions (a fenced replica's aborted event stays in the log)
        isolation_level="read_committed",
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (start or {}).get(tp, 0))
        pending = {tp for tp in partitions if ends[tp] > (start or {}).get(tp, 0)}
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {sorted(str(tp) for tp in pending)} to their end in 120s")
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
            for tp, items in batch.items():
                for item in items:
                    if item.offset < ends[tp]:
                        ce_id = header_value(list(item.headers or ()), "ce_id")
                        records.append(
                            Record(
                                item.topic,
                                item.partition,
                                item.offset,
                                item.key,
                                item.value or b"",
                                ce_id.decode("utf-8", "replace") if ce_id is not None else None,
                            )
                        )
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await stop_consumer(consumer)


async def committed_offsets(bootstrap: str, group: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(**connection_kwargs(bootstrap), request_timeout_ms=10_000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {f"{tp.topic}:{tp.partition}": meta.offset for tp, meta in committed.items()}


async def group_lag(bootstrap: str, groups: Mapping[str, Iterable[str]]) -> dict[str, int]:
    """Messages each consumer group of ``groups`` (group -> the topics it reads) has not committed yet."""
    admin = AIOKafkaAdminClient(**connection_kwargs(bootstrap), request_timeout_ms=10_000)
    await admin.start()
    try:
        groups = {group: set(topics) for group, topics in groups.items()}
        ends = await end_offsets(bootstrap, {topic for topics in groups.values() for topic in topics})
        lag: dict[str, int] = {}
        for group, topics in groups.items():
            committed = await admin.list_consumer_group_offsets(group)
            lag[group] = sum(
                max(0, end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
                for tp, end in ends.items()
                if tp.topic in topics
            )
        return lag
    finally:
        await admin.close()


async def partition_leaders(bootstrap: str) -> dict[int, int]:
    """How many partitions (of every topic, internal ones included) each broker leads now: node id -> count."""
    client = AIOKafkaClient(**connection_kwargs(bootstrap), request_timeout_ms=10_000)
    await client.bootstrap()
    try:
        metadata = await client.fetch_all_metadata()
        leaders: dict[int, int] = {broker.nodeId: 0 for broker in metadata.brokers()}
        for topic in metadata.topics(exclude_internal_topics=False):
            for partition in metadata.partitions_for_topic(topic) or ():
                leader = metadata.leader_for_partition(TopicPartition(topic, partition))
                if leader is not None and leader >= 0:
                    leaders[leader] = leaders.get(leader, 0) + 1
        return leaders
    finally:
        await client.close()


async def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    """A consumer group's state (``Stable``, ``PreparingRebalance``, ...) and how many members it has."""
    admin = AIOKafkaAdminClient(**connection_kwargs(bootstrap), request_timeout_ms=10_000)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            return str(described[2]), len(described[5])
    return "Unknown", 0
