"""Proof that the broker is a real Kafka and that the client behaviours the services rely on hold on it."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from pipeline_common.kafka import durable_producer
from pipeline_common.settings import KafkaSettings
from tests.support.kafka import KafkaTestClient
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_idempotent_acks_all_producer_writes_in_order(kafka: KafkaTestClient, unique: str) -> None:
    topic = await kafka.create_topic(unique, partitions=1)
    producer = durable_producer(KafkaSettings(kafka_bootstrap_servers=[kafka.bootstrap_servers]))
    await producer.start()
    try:
        assert producer._txn_manager is not None  # idempotence is on: the broker handed out a producer id
        metadata = [await producer.send_and_wait(topic, key=b"k", value=str(i).encode()) for i in range(20)]
        assert producer._txn_manager.producer_id >= 0
    finally:
        await producer.stop()
    assert [m.offset for m in metadata] == list(range(20))
    records = await kafka.consume(topic, count=20)
    assert [r.value for r in records] == [str(i).encode() for i in range(20)]


async def test_committed_offsets_survive_a_consumer_restart(kafka: KafkaTestClient, unique: str) -> None:
    topic = await kafka.create_topic(unique, partitions=1)
    await kafka.produce(topic, [(None, f"m{i}".encode()) for i in range(5)])
    tp = TopicPartition(topic, 0)

    def consumer() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=unique,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    first = consumer()
    await first.start()
    try:
        seen = []
        while len(seen) < 3:
            seen.append(await first.getone())
        await first.commit({tp: seen[-1].offset + 1})  # "work done" for m0..m2 only
    finally:
        await first.stop()

    second = consumer()
    await second.start()
    try:
        assert await second.committed(tp) == 3
        assert (await second.getone()).value == b"m3"
    finally:
        await second.stop()


async def test_two_consumers_split_partitions_and_rebalance_when_one_leaves(
    kafka: KafkaTestClient, unique: str
) -> None:
    topic = await kafka.create_topic(unique, partitions=4)

    def member() -> AIOKafkaConsumer:
        return AIOKafkaConsumer(
            topic,
            bootstrap_servers=kafka.bootstrap_servers,
            group_id=unique,
            enable_auto_commit=False,
            session_timeout_ms=10_000,
            heartbeat_interval_ms=500,
        )

    one, two = member(), member()
    await one.start()
    await wait_for(lambda: len(one.assignment()) == 4, timeout=30, message="first member owns all partitions")
    await two.start()
    try:
        await wait_for(
            lambda: len(one.assignment()) == 2 and len(two.assignment()) == 2,
            timeout=30,
            message="partitions split between the two members",
        )
        assert not (one.assignment() & two.assignment())
        assert {tp.partition for tp in one.assignment() | two.assignment()} == {0, 1, 2, 3}
    finally:
        await two.stop()
    try:
        await wait_for(lambda: len(one.assignment()) == 4, timeout=30, message="survivor takes every partition")
    finally:
        await one.stop()
