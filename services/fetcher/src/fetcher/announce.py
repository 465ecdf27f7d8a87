"""Emit ``transcripts.ready`` exactly once per stored transcript, across crashes and zombie replicas.

Before an attempt reads the store, it *claims* the transcript: a lease of :mod:`fetcher.fence` (a transactional
producer tied to the input partition, which fences any older replica still working on it) and where the event will
go: the partition (the key's, computed the way Kafka's default partitioner does) and that partition's end offset now
(the *floor*, taken before the store is read, so it is below every event any attempt sends after a manifest exists).
The manifest records the latter. Then:

- the usual case: manifest written by this attempt -> send, note the offset in the Table, commit;
- a crash after the manifest and before the Table notes the event (the redelivered ``transcript.done`` finds a
  complete manifest but no "ready" in the Table): read the partition from the floor to its end, looking for the
  event's id (``ce_id``). Found: it was sent, do not send again. Not found: send it now, the manifest's copy, so the
  event is the same bytes it would have been. The search reads committed records only, up to the partition's high
  watermark when it began (an open transaction is waited for: it is committed or aborted within seconds).

The event is sent in a transaction of the claim's lease; a fenced lease fails the attempt, which is retried.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Final

from aiokafka import AIOKafkaConsumer, TopicPartition

from fetcher.fence import Fence, Lease, count_partitions, partition_for
from pipeline_common.cloudevents import CloudEventAttributes, build_headers, header_value
from pipeline_common.contracts import READY_EVENT_TYPE
from pipeline_common.logging import get_logger
from pipeline_common.settings import KafkaSettings
from pipeline_common.store import Announcement, Manifest

_log = get_logger("fetcher.announce")
SOURCE: Final = "urn:recall-pipeline:fetcher"
SCAN_TIMEOUT_SECONDS: Final = 60.0


def ready_event_id(transcript_id: str) -> str:
    """Deterministic: every emission for one transcript carries the same ``ce_id``, so consumers can drop repeats."""
    return f"transcript-ready:{transcript_id}"


__all__ = ["SOURCE", "Announcer", "Claim", "partition_for", "ready_event_id"]


@dataclass(frozen=True)
class Claim:
    """Taken before an attempt reads the store: where its event goes (and the floor), and the lease to send it with."""

    announcement: Announcement
    lease: Lease | None = None


class Announcer:
    def __init__(self, settings: KafkaSettings, topic: str, fence: Fence) -> None:
        self._settings = settings
        self._name = topic
        self._fence = fence
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: int | None = None
        self._lock = asyncio.Lock()

    async def _offsets_client(self) -> AIOKafkaConsumer:
        async with self._lock:
            if self._consumer is None:
                consumer = AIOKafkaConsumer(**self._settings.aiokafka_connection_kwargs(), enable_auto_commit=False)
                await consumer.start()
                self._consumer = consumer
            return self._consumer

    async def _partition_count(self) -> int:
        if self._partitions is None:
            self._partitions = await count_partitions(self._settings, self._name)
        return self._partitions

    async def _high_watermark(self, tp: TopicPartition) -> int:
        consumer = await self._offsets_client()  # read_uncommitted: the end of the log, open transactions included
        return int((await consumer.end_offsets([tp]))[tp])

    async def claim(self, recording_id: str, transcript_id: str) -> Claim:
        """The lease first (it fences older holders), then where the event will go and the floor of a search."""
        lease = await self._fence.lease(recording_id)
        partition = partition_for(recording_id.encode(), await self._partition_count())
        floor = await self._high_watermark(TopicPartition(self._name, partition))
        announcement = Announcement(
            topic=self._name, partition=partition, floor_offset=floor, event_id=ready_event_id(transcript_id)
        )
        return Claim(announcement, lease)

    async def find(self, announcement: Announcement) -> int | None:
        """The offset of the announcement's event if it is in the topic (from the floor on), else None."""
        tp = TopicPartition(announcement.topic, announcement.partition)
        end = await self._high_watermark(tp)
        if end <= announcement.floor_offset:
            return None
        consumer = AIOKafkaConsumer(
            **self._settings.aiokafka_connection_kwargs(), enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        try:
            consumer.assign([tp])
            consumer.seek(tp, announcement.floor_offset)
            async with asyncio.timeout(SCAN_TIMEOUT_SECONDS):
                while await consumer.position(tp) < end:
                    batch = await consumer.getmany(tp, timeout_ms=1000, max_records=500)
                    for record in batch.get(tp, []):
                        found = header_value(list(record.headers or ()), "ce_id")
                        if found is not None and found.decode("utf-8", "replace") == announcement.event_id:
                            return int(record.offset)
            return None
        finally:
            await consumer.stop()

    async def announce(
        self, manifest: Manifest, *, fresh: bool, claim: Claim, traceparent: str | None = None
    ) -> tuple[int, bool]:
        """Send the manifest's event unless it is already in the topic; (offset, whether it was sent now)."""
        assert manifest.event is not None and manifest.announcement is not None and claim.lease is not None
        announcement = manifest.announcement
        if not fresh:
            found = await self.find(announcement)
            if found is not None:
                _log.info(
                    "transcripts.ready already emitted before a restart; not sending it again",
                    transcript_id=manifest.transcript_id,
                    partition=announcement.partition,
                    offset=found,
                )
                return found, False
        event = manifest.event
        headers = build_headers(
            CloudEventAttributes(
                id=announcement.event_id,
                source=SOURCE,
                type=READY_EVENT_TYPE,
                time=event.ready_at,
                subject=event.recording_id,
                traceparent=traceparent,
            )
        )
        offset = await claim.lease.send(
            announcement.topic,
            key=event.recording_id.encode(),
            value=event.model_dump_json().encode(),
            partition=announcement.partition,
            headers=headers,
        )
        return offset, True

    async def close(self) -> None:
        await self._fence.close()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None
