"""The pipeline benchmark's driver, in its own process: creates recordings in the simulator and follows the public
topics the way a downstream service would.

One JSON command per line on stdin, one JSON answer per line on stdout (``{"op": "hello"}`` first, once the consumer
is positioned at the end of ``transcripts.ready`` and ``transcripts.failed``):

``{"op": "run", "count": N, "rate": R | null, "concurrency": C, "window": W | null, "words": W, "timeout": T,
"reset": bool, "cover_partitions": P | null}``
    ``reset``: forget the simulator's state first (its lookups are linear in what it holds). Then create ``count``
    recordings (``POST /admin/recordings``: the simulator sends ``recording.done`` at once) either as fast as ``C``
    connections allow while fewer than ``window`` recordings are in the pipeline (``rate`` null: a closed loop that
    keeps the pipeline saturated without burying the simulator under thousands of pending webhook deliveries) or at
    ``R`` per second on fixed due times (open loop); then wait, at most ``timeout`` seconds after the last one, until
    each has ended on ``transcripts.ready`` or ``transcripts.failed``.
    ``cover_partitions``: choose the recording ids so that they fall on every one of P partitions (the warm-up).
    Answers with counts, the simulator's send time of the first ``recording.done`` webhook, the time the last event
    was consumed, and latency percentiles from the webhook's first send attempt (the simulator's record) to the
    moment its ``transcripts.ready`` was consumed here.
``{"op": "quit"}``
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import sys
import time
import uuid
from datetime import datetime
from typing import Any

import aiohttp
import uvloop
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.framework import percentile
from pipeline_common.kafka import connection_kwargs

READY_TOPIC = "transcripts.ready"
FAILED_TOPIC = "transcripts.failed"


def murmur2_partition(key: bytes, partitions: int) -> int:
    from aiokafka.partitioner import murmur2

    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def stats_ms(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)
    if not ordered:
        return {"p50": None, "p90": None, "p95": None, "p99": None, "max": None, "mean": None}
    return {
        "p50": round(percentile(ordered, 50) * 1000, 1),
        "p90": round(percentile(ordered, 90) * 1000, 1),
        "p95": round(percentile(ordered, 95) * 1000, 1),
        "p99": round(percentile(ordered, 99) * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
        "mean": round(sum(ordered) / len(ordered) * 1000, 1),
    }


class Follower:
    """Consumes both public topics from their end when started; notes when each wanted recording ended."""

    def __init__(self, bootstrap: str) -> None:
        self.consumer = AIOKafkaConsumer(**connection_kwargs(bootstrap), enable_auto_commit=False)
        self.wanted: set[str] = set()
        self.ready: dict[str, float] = {}
        self.failed: dict[str, float] = {}
        self.duplicates = 0
        self.foreign = 0
        self.progress = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.consumer.start()
        partitions: list[TopicPartition] = []
        for topic in (READY_TOPIC, FAILED_TOPIC):
            found = self.consumer.partitions_for_topic(topic)
            deadline = time.monotonic() + 60
            while not found and time.monotonic() < deadline:
                await self.consumer._client.force_metadata_update()
                found = self.consumer.partitions_for_topic(topic)
                if not found:
                    await asyncio.sleep(0.5)
            if not found:
                raise RuntimeError(f"topic {topic} does not exist")
            partitions += [TopicPartition(topic, p) for p in sorted(found)]
        self.consumer.assign(partitions)
        await self.consumer.seek_to_end(*partitions)
        for tp in partitions:  # resolve the positions now, so nothing produced from here on is missed
            await self.consumer.position(tp)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            batch = await self.consumer.getmany(timeout_ms=100, max_records=2000)
            moment = time.time()
            for records in batch.values():
                for record in records:
                    try:
                        recording_id = str(json.loads(record.value or b"{}").get("recording_id"))
                    except ValueError:
                        continue
                    if recording_id not in self.wanted:
                        self.foreign += 1
                        continue
                    ended = self.ready if record.topic == READY_TOPIC else self.failed
                    if recording_id in self.ready or recording_id in self.failed:
                        self.duplicates += 1
                    ended.setdefault(recording_id, moment)
            if batch:
                self.progress.set()

    def reset(self, wanted: set[str]) -> None:
        self.wanted = wanted
        self.ready, self.failed = {}, {}
        self.duplicates = self.foreign = 0

    def ended(self) -> int:
        return len(self.ready) + len(self.failed)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.consumer.stop()


def recording_ids(count: int, cover_partitions: int | None) -> list[str]:
    if not cover_partitions:
        return [str(uuid.uuid4()) for _ in range(count)]
    by_partition: dict[int, list[str]] = {p: [] for p in range(cover_partitions)}
    ids: list[str] = []
    for _ in range(100_000):
        candidate = str(uuid.uuid4())
        partition = murmur2_partition(candidate.encode(), cover_partitions)
        if len(by_partition[partition]) < math.ceil(count / cover_partitions):
            by_partition[partition].append(candidate)
            ids.append(candidate)
        if len(ids) >= count:
            break
    return ids


async def run(session: aiohttp.ClientSession, sim: str, follower: Follower, command: dict[str, Any]) -> dict[str, Any]:
    count = int(command["count"])
    rate = command.get("rate")
    concurrency = int(command.get("concurrency", 8))
    timeout = float(command.get("timeout", 120))
    words = int(command.get("words", 50))
    if command.get("reset"):
        async with session.post(f"{sim}/admin/reset") as response:
            response.raise_for_status()
    ids = recording_ids(count, command.get("cover_partitions"))
    follower.reset(set(ids))
    created_at: dict[str, float] = {}
    errors: list[str] = []
    lags: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def create(recording_id: str) -> None:
        body = {"id": recording_id, "metadata": {"bench": "pipeline"}, "transcript": {"words": words}}
        async with gate:
            sent = time.time()
            try:
                async with session.post(f"{sim}/admin/recordings", json=body) as response:
                    if response.status != 201:
                        errors.append(f"{response.status}: {(await response.text())[:200]}")
                        return
                    await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                errors.append(f"{type(error).__name__}: {error}")
                return
            created_at[recording_id] = sent

    started = time.time()
    clock = time.monotonic()
    if rate:
        interval = 1.0 / float(rate)
        tasks = []
        for index, recording_id in enumerate(ids):
            due = clock + index * interval
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, time.monotonic() - due))
            tasks.append(asyncio.create_task(create(recording_id)))
        await asyncio.gather(*tasks)
    else:
        queue = iter(ids)
        window = int(command.get("window") or 0)
        stalled = [False]

        async def room() -> bool:
            """Wait until fewer than ``window`` recordings are in the pipeline; False when nothing ended for
            ``timeout`` seconds (the pipeline is stuck: stop creating)."""
            last_progress = time.monotonic()
            ended = follower.ended()
            while len(created_at) - follower.ended() >= window:
                if follower.ended() != ended:
                    ended, last_progress = follower.ended(), time.monotonic()
                if time.monotonic() - last_progress > timeout:
                    stalled[0] = True
                    return False
                follower.progress.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(follower.progress.wait(), timeout=0.5)
            return True

        async def worker() -> None:
            for recording_id in queue:
                if window and (stalled[0] or not await room()):
                    return
                await create(recording_id)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    created_seconds = time.monotonic() - clock

    deadline = time.monotonic() + timeout
    while follower.ended() < len(created_at) and time.monotonic() < deadline:
        follower.progress.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(follower.progress.wait(), timeout=1.0)
    waited_seconds = time.monotonic() - clock

    # The simulator's record of each recording.done webhook: when its first attempt was sent.
    async with session.get(f"{sim}/admin/deliveries", params={"event": "recording.done", "body": "false"}) as response:
        response.raise_for_status()
        deliveries = await response.json()
    sent_at: dict[str, float] = {}
    attempts_over_one = 0
    for delivery in deliveries:
        recording_id = delivery.get("recording_id")
        if recording_id in created_at and delivery.get("attempts"):
            sent_at[recording_id] = epoch(delivery["attempts"][0]["at"])
            attempts_over_one += len(delivery["attempts"]) > 1

    latencies = [follower.ready[r] - sent_at[r] for r in follower.ready if r in sent_at]
    from_create = [follower.ready[r] - created_at[r] for r in follower.ready if r in created_at]
    first_sent = min(sent_at.values(), default=None)
    ended_times = [*follower.ready.values(), *follower.failed.values()]
    last_ended = max(ended_times, default=None)
    span = (last_ended - first_sent) if first_sent is not None and last_ended is not None else None
    return {
        "op": "run",
        "count": count,
        "rate": rate,
        "concurrency": concurrency,
        "created": len(created_at),
        "create_errors": len(errors),
        "create_error_samples": errors[:5],
        "create_seconds": round(created_seconds, 3),
        "create_rate": round(len(created_at) / created_seconds, 1) if created_seconds > 0 else None,
        "create_lag_p99_ms": round(percentile(sorted(lags), 99) * 1000, 1) if lags else None,
        "ready": len(follower.ready),
        "failed": len(follower.failed),
        "missing": len(created_at) - follower.ended(),
        "duplicates": follower.duplicates,
        "webhooks_retried": attempts_over_one,
        "webhook_times_found": len(sent_at),
        "started_at": started,
        "first_webhook_at": first_sent,
        "last_ended_at": last_ended,
        "span_seconds": round(span, 3) if span is not None else None,
        "waited_seconds": round(waited_seconds, 3),
        "recordings_per_second": round(follower.ended() / span, 2) if span else None,
        "latency_ms": stats_ms(latencies),
        "latency_from_create_ms": stats_ms(from_create),
    }


async def main() -> int:
    bootstrap, sim = sys.argv[1], sys.argv[2].rstrip("/")
    follower = Follower(bootstrap)
    await follower.start()
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=60)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            print(json.dumps({"op": "hello"}), flush=True)
            while True:
                line = await reader.readline()
                if not line:
                    break
                command = json.loads(line)
                if command.get("op") == "quit":
                    break
                try:
                    result = await run(session, sim, follower, command)
                except Exception as error:  # the harness reports it; the process stays usable
                    result = {"op": "error", "error": f"{type(error).__name__}: {error}"}
                print(json.dumps(result), flush=True)
    finally:
        await follower.stop()
    return 0


if __name__ == "__main__":
    sys.exit(uvloop.run(main()))
