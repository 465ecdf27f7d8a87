"""Helpers for the fetcher's tests and benchmark: a pipeline driver that produces ``transcript.done`` events and reads
what the fetcher emits, beside the processes and servers of :mod:`tests.fetcher.servers` (re-exported here)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from fetcher.announce import partition_for
from fetcher.state import RetryPolicy
from pipeline_common.cloudevents import CloudEventAttributes, build_headers, header_value
from pipeline_common.retries import RetryDue
from pipeline_common.topics import FETCHER_RETRIES, TRANSCRIPT_EVENTS, TRANSCRIPTS_READY
from pipeline_common.worker.table import SWEEP_TARGET
from tests.fetcher.servers import (
    AWS_ENV,
    DLQ,
    ROOT,
    DownloadProxy,
    FetcherWorker,
    aws_credentials,
    create_bucket,
    s3_server,
    worker_env,
)
from tests.support.kafka import KafkaTestClient
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

#: The fetcher's retry policy in the in-process tests: three attempts, short back-off.
RETRY_POLICY = RetryPolicy(
    max_attempts=3,
    retry_base_seconds=1,
    retry_max_seconds=60,
    operator_retry_seconds=60,
    operator_retry_max_seconds=900,
)


__all__ = [
    "AWS_ENV",
    "DLQ",
    "ROOT",
    "DownloadProxy",
    "FetcherWorker",
    "Pipeline",
    "SimTranscript",
    "aws_credentials",
    "create_bucket",
    "s3_server",
    "start_primed",
    "wait_state",
    "worker_env",
]

# --- driving the pipeline ------------------------------------------------------------------------------------------


@dataclass
class SimTranscript:
    recording_id: str
    transcript_id: str
    body: bytes
    webhook_id: str


class Pipeline:
    """Creates transcripts in the simulator, produces their ``transcript.done`` to Kafka as ingest would, and reads
    ``transcripts.ready`` and ``fetcher.dlq`` from where they ended when the driver was made."""

    def __init__(self, bootstrap: str, sim: RunningSim) -> None:
        self.bootstrap = bootstrap
        self.sim = sim
        self._starts: dict[str, dict[int, int]] = {}

    async def mark(self) -> None:
        """Remember the current end of the output topics: reads start there."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)
        await consumer.start()
        try:
            for topic in (TRANSCRIPTS_READY.name, DLQ):
                partitions = await self._partitions(consumer, topic)
                tps = [TopicPartition(topic, p) for p in partitions]
                offsets = await consumer.end_offsets(tps)
                self._starts[topic] = {tp.partition: offset for tp, offset in offsets.items()}
        finally:
            await consumer.stop()

    @staticmethod
    async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> list[int]:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            await consumer._client.force_metadata_update()
            partitions = consumer.partitions_for_topic(topic) or set()
        return sorted(partitions)

    async def make_transcript(
        self, *, provider: str = "recallai_async", attempt: int = 1, **spec: Any
    ) -> SimTranscript:
        """A recording and a finished transcript in the simulator; returns the transcript.done webhook it made."""
        recording = await self.sim.admin.create_recording(
            id=f"rec-{uuid.uuid4().hex[:12]}", webhooks=False, transcript=spec, metadata={"team": "fetcher-tests"}
        )
        async with self.sim.client() as recall:
            options: dict[str, Any] = {"language_code": "en"} if provider == "recallai_async" else {}
            artifact = await recall.create_transcript(
                recording["id"],
                {provider: options},
                metadata={"pipeline": "tests", "pipeline_attempt": str(attempt), "recording_id": recording["id"]},
            )

        async def delivered() -> dict[str, Any] | None:
            found = await self.sim.admin.deliveries(transcript_id=artifact.id, event="transcript.done")
            return found[0] if found else None

        delivery = await wait_for(delivered, timeout=15, interval=0.02, message="transcript.done in the simulator")
        body = json.dumps(delivery["body"], separators=(",", ":"), ensure_ascii=False).encode()
        return SimTranscript(recording["id"], artifact.id, body, delivery["id"])

    async def publish(
        self, transcript: SimTranscript, *, webhook_id: str | None = None, body: bytes | None = None
    ) -> None:
        await self.produce(
            transcript.recording_id.encode(),
            body if body is not None else transcript.body,
            webhook_id or transcript.webhook_id,
            json.loads(body or transcript.body).get("event", "transcript.done"),
        )

    async def produce(self, key: bytes | None, value: bytes, webhook_id: str, event_type: str) -> None:
        headers = build_headers(
            CloudEventAttributes(
                id=webhook_id,
                source="urn:recall-pipeline:tests",
                type=event_type,
                time=datetime.now(UTC),
                subject=key.decode() if key else None,
            )
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all")
        await producer.start()
        try:
            await producer.send_and_wait(TRANSCRIPT_EVENTS.name, value=value, key=key, headers=headers)
        finally:
            await producer.stop()

    async def records(
        self,
        topic: str,
        *,
        until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
        timeout: float = 30,
        worker: FetcherWorker | None = None,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """Records of ``topic`` since :meth:`mark`, read until ``until`` holds (AssertionError after ``timeout``)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        records: list[ConsumerRecord[bytes, bytes]] = []
        try:
            starts = self._starts.get(topic, {})
            tps = [TopicPartition(topic, p) for p in await self._partitions(consumer, topic)]
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, starts.get(tp.partition, 0))
            deadline = time.monotonic() + timeout
            while not until(records):
                if time.monotonic() > deadline:
                    tail = f"\nworker log:\n{worker.log_tail()}" if worker else ""
                    raise AssertionError(
                        f"condition on {topic} not met within {timeout:.0f}s ({len(records)} read){tail}"
                    )
                batch = await consumer.getmany(timeout_ms=200)
                for partition_records in batch.values():
                    records.extend(partition_records)
            return records
        finally:
            await consumer.stop()

    async def ready_events(self, transcript_id: str, *, count: int = 1, **kwargs: Any) -> list[dict[str, Any]]:
        """Wait for ``count`` transcripts.ready events of ``transcript_id``; return all seen so far (parsed)."""

        def mine(records: list[ConsumerRecord[bytes, bytes]]) -> list[dict[str, Any]]:
            found = []
            for record in records:
                ce_id = header_value(list(record.headers or ()), "ce_id")
                if ce_id == f"transcript-ready:{transcript_id}".encode():
                    found.append(
                        {**json.loads(record.value or b"{}"), "_offset": record.offset, "_headers": record.headers}
                    )
            return found

        records = await self.records(TRANSCRIPTS_READY.name, until=lambda rs: len(mine(rs)) >= count, **kwargs)
        return mine(records)

    async def all_ready(self, transcript_id: str) -> list[dict[str, Any]]:
        """Every committed transcripts.ready event of ``transcript_id`` up to the current end of the topic (read as
        downstream services read it: read_committed, so an aborted announcement of a fenced replica is not one)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, isolation_level="read_committed"
        )
        await consumer.start()
        found: list[dict[str, Any]] = []
        try:
            tps = [
                TopicPartition(TRANSCRIPTS_READY.name, p)
                for p in await self._partitions(consumer, TRANSCRIPTS_READY.name)
            ]
            ends = await self.high_watermarks(tps)
            starts = self._starts.get(TRANSCRIPTS_READY.name, {})
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, starts.get(tp.partition, 0))
            deadline = time.monotonic() + 60
            pending = set(tps)
            while pending:
                if time.monotonic() > deadline:
                    raise AssertionError(f"could not read {sorted(map(str, pending))} to their end in 60s")
                batch = await consumer.getmany(*pending, timeout_ms=200)
                for records in batch.values():
                    for record in records:
                        if (
                            header_value(list(record.headers or ()), "ce_id")
                            == f"transcript-ready:{transcript_id}".encode()
                        ):
                            found.append(json.loads(record.value or b"{}"))
                pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        finally:
            await consumer.stop()
        return found

    async def high_watermarks(self, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap)  # read_uncommitted: the end of the log
        await consumer.start()
        try:
            return dict(await consumer.end_offsets(tps))
        finally:
            await consumer.stop()

    async def dlq_records(self, key: bytes, *, count: int = 1, **kwargs: Any) -> list[ConsumerRecord[bytes, bytes]]:
        def mine(records: list[ConsumerRecord[bytes, bytes]]) -> list[ConsumerRecord[bytes, bytes]]:
            return [record for record in records if record.key == key]

        return mine(await self.records(DLQ, until=lambda rs: len(mine(rs)) >= count, **kwargs))

    async def prime(self, worker: FetcherWorker, partitions: int = TRANSCRIPT_EVENTS.partitions) -> None:
        """Make sure the worker reads every partition from now on: one poison message per partition must come
        back on the DLQ (with ``auto_offset_reset=latest`` an event produced before the worker positioned itself on
        a partition would be skipped)."""
        keys: dict[int, bytes] = {}
        while len(keys) < partitions:
            key = f"prime-{uuid.uuid4().hex[:10]}".encode()
            keys.setdefault(partition_for(key, partitions), key)
        for key in keys.values():
            await self.produce(key, b"not json: priming the fetcher", f"prime-{key.decode()}", "transcript.done")
        for key in keys.values():
            await self.dlq_records(key, timeout=60, worker=worker)

    async def commit_every_retries_partition(self, worker: FetcherWorker) -> None:
        """See :meth:`KafkaTestClient.commit_every_partition`: a wake-up of no recording the worker knows each."""
        await KafkaTestClient(self.bootstrap).commit_every_partition(
            worker.env["FETCHER_APP_ID"],
            FETCHER_RETRIES.name,
            FETCHER_RETRIES.partitions,
            lambda key: RetryDue(key, SWEEP_TARGET, 0).dumps(),
        )


async def wait_state(
    worker: FetcherWorker, recording_id: str, transcript_id: str, status: str, timeout: float = 30
) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        state = await asyncio.to_thread(worker.transcript_state, recording_id, transcript_id)
        return state if state is not None and state["status"] == status else None

    try:
        return await wait_for(reached, timeout=timeout, interval=0.1, message=f"transcript {transcript_id} {status}")
    except AssertionError as error:
        state = worker.transcript_state(recording_id, transcript_id)
        raise AssertionError(f"{error}; state: {state}\nworker log:\n{worker.log_tail()}") from None


async def start_primed(worker: FetcherWorker, pipeline: Pipeline, **overrides: str) -> None:
    """Start, read every partition, and wait until the group has committed offsets for all of them (so a restarted
    worker resumes exactly where this one stopped)."""
    worker.start(**overrides)
    worker.wait_ready()
    await pipeline.prime(worker)
    group = worker.env["FETCHER_APP_ID"]

    async def committed() -> bool:
        offsets = await KafkaTestClient(pipeline.bootstrap).committed_offsets(group)
        return sum(1 for tp in offsets if tp.topic == TRANSCRIPT_EVENTS.name) >= TRANSCRIPT_EVENTS.partitions

    await wait_for(committed, timeout=30, interval=0.3, message="offsets committed on every partition")
