"""The fence itself, on a real broker: two replicas' :class:`fetcher.fence.Fence` for one partition. The replica that
takes the lease last fences the other; the fenced one cannot commit an announcement, and a read_committed reader sees
only the owner's. (``test_zombie.py`` runs the whole scenario with two fetcher processes.)"""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from fetcher.fence import Fence, LeaseLost, partition_for
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import TRANSCRIPT_EVENTS, TRANSCRIPTS_READY
from tests.support.kafka import KafkaTestClient
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def committed_values(bootstrap: str, tp: TopicPartition, start: int) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, isolation_level="read_committed")
    await consumer.start()
    try:
        end = (await consumer.end_offsets([tp]))[tp]  # read_committed: the last stable offset
        consumer.assign([tp])
        consumer.seek(tp, start)
        values: list[bytes] = []
        while await consumer.position(tp) < end:
            for records in (await consumer.getmany(tp, timeout_ms=500)).values():
                values.extend(record.value or b"" for record in records)
        return values
    finally:
        await consumer.stop()


async def test_the_last_lease_holder_fences_the_other(kafka: KafkaTestClient, unique: str) -> None:
    ready = await kafka.create_topic(f"{unique}.ready", TRANSCRIPTS_READY.partitions)
    source = await kafka.create_topic(f"{unique}.events", TRANSCRIPT_EVENTS.partitions)
    for topic in (ready, source):

        async def described(topic: str = topic) -> bool:
            return len(await kafka.end_offsets(topic)) == TRANSCRIPT_EVENTS.partitions

        await wait_for(described, timeout=30, interval=0.2, message=f"{topic}'s partitions in the metadata")
    settings = KafkaSettings(kafka_bootstrap_servers=[kafka.bootstrap_servers])
    app_id = f"fetcher-fence-{uuid.uuid4().hex[:8]}"
    recording = f"rec-{uuid.uuid4().hex[:8]}"
    partition = partition_for(recording.encode(), TRANSCRIPTS_READY.partitions)
    tp = TopicPartition(ready, partition)
    zombie, owner = (Fence(settings, app_id=app_id, source_topic=source) for _ in range(2))
    try:
        old = await zombie.lease(recording)
        new = await owner.lease(recording)  # the partition moved: the new owner's init bumps the epoch
        assert new.transactional_id == old.transactional_id

        await new.send(ready, key=recording.encode(), value=b"owner", partition=partition, headers=[])
        with pytest.raises(KafkaError):
            await old.send(ready, key=recording.encode(), value=b"zombie", partition=partition, headers=[])
        with pytest.raises(LeaseLost):  # the lease is dropped: this attempt can never announce
            await old.send(ready, key=recording.encode(), value=b"zombie", partition=partition, headers=[])
        assert await committed_values(kafka.bootstrap_servers, tp, 0) == [b"owner"]
    finally:
        await zombie.close()
        await owner.close()
