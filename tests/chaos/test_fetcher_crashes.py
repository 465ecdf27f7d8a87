"""Two ways a SIGKILLed fetcher lost a transcript, both found by ``make chaos``, both fixed:

- killed while carrying out a *retry* of a download: the transcript stayed "fetching" forever, never announced (the
  redelivered wake-up was refused because the transcript was no longer "retry_scheduled", the retry timer only wakes
  scheduled ones, and the transcript.done that started the work was long committed);
- killed while an earlier transcript.done of the partition was still being processed by one of the agent's two
  actors and later ones were done: faust had committed the offset past the slow one, which was never redelivered.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from fetcher.announce import partition_for
from pipeline_common.topics import TRANSCRIPT_EVENTS
from tests.fetcher.support import (
    DownloadProxy,
    FetcherWorker,
    Pipeline,
    SimTranscript,
    wait_state,
    worker_env,
)
from tests.support.kafka import KafkaTestClient
from tests.support.recall_sim import RunningSim, run_recall_sim, sim_settings
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]


async def end_offset(bootstrap: str, tp: TopicPartition) -> int:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return int((await consumer.end_offsets([tp]))[tp])
    finally:
        await consumer.stop()


async def committed_offset(bootstrap: str, group: str, tp: TopicPartition) -> int:
    return (await KafkaTestClient(bootstrap).committed_offsets(group)).get(tp, -1)


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with run_recall_sim(sim_settings(recall_sim_transcript_delay_seconds=0.01)) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(sim: RunningSim) -> Iterator[DownloadProxy]:
    """Download URLs point at this proxy in front of the simulator (it passes through unless told otherwise)."""
    with DownloadProxy(sim.base_url).running() as running:
        httpx.patch(f"{sim.base_url}/admin/config", json={"public_url": running.url}, timeout=10).raise_for_status()
        yield running


@pytest.fixture
def worker(tmp_path: Path, kafka_bootstrap: str, sim: RunningSim) -> Iterator[FetcherWorker]:
    env = worker_env(
        bootstrap=kafka_bootstrap,
        sim=sim,
        store_url=(tmp_path / "store").as_uri(),
        app_id=f"fetcher-retry-crash-{uuid.uuid4().hex[:10]}",
        data_dir=tmp_path / "data",
    )
    running = FetcherWorker(env=env, log_dir=tmp_path)
    yield running
    running.kill()


async def test_killed_while_retrying_a_download(worker: FetcherWorker, sim: RunningSim, kafka_bootstrap: str) -> None:
    pipeline = Pipeline(kafka_bootstrap, sim)
    await pipeline.mark()
    worker.start(FETCHER_FAULT_PAUSE_BEFORE_ANNOUNCE_SECONDS="120")
    worker.wait_ready()
    await pipeline.prime(worker)
    await pipeline.commit_every_retries_partition(worker)
    transcript = await pipeline.make_transcript(words=100)
    await sim.admin.set_faults({"endpoints": {"download": {"fail_next": 1, "status": 503}}})
    try:
        await pipeline.publish(transcript)
        source = TopicPartition(
            TRANSCRIPT_EVENTS.name, partition_for(transcript.recording_id.encode(), TRANSCRIPT_EVENTS.partitions)
        )
        published_end = await end_offset(kafka_bootstrap, source)

        async def retrying() -> bool:
            state = await asyncio.to_thread(worker.transcript_state, transcript.recording_id, transcript.transcript_id)
            # The download failed once; the retry has downloaded and stored it and holds before the announcement.
            return bool(state and state["status"] == "fetching" and state["attempts"] == 1 and state["retry"])

        await wait_for(retrying, timeout=60, interval=0.1, message="the retry in progress")
    finally:
        await sim.admin.clear_faults()

    async def source_committed() -> bool:
        # The transcript.done is done with (a retry was scheduled): once committed, it is never redelivered, so only
        # the retry machinery can finish the transcript after the crash.
        return await committed_offset(kafka_bootstrap, worker.env["FETCHER_APP_ID"], source) >= published_end

    await wait_for(source_committed, timeout=30, interval=0.2, message="transcript.done committed")
    worker.kill()
    assert await pipeline.all_ready(transcript.transcript_id) == []

    # As in production, a partition with no committed offset is read from its start (the retries topic's are all
    # committed up to the wake-up in hand: the restarted worker reads that one again).
    worker.start(FETCHER_FAULT_PAUSE_BEFORE_ANNOUNCE_SECONDS="0", FETCHER_AUTO_OFFSET_RESET="earliest")
    worker.wait_ready()
    await wait_state(worker, transcript.recording_id, transcript.transcript_id, "ready", timeout=90)
    assert len(await pipeline.all_ready(transcript.transcript_id)) == 1


def partition_of(transcript: SimTranscript) -> TopicPartition:
    return TopicPartition(
        TRANSCRIPT_EVENTS.name, partition_for(transcript.recording_id.encode(), TRANSCRIPT_EVENTS.partitions)
    )


async def test_killed_while_an_earlier_transcript_of_the_partition_is_still_downloading(
    worker: FetcherWorker, sim: RunningSim, proxy: DownloadProxy, kafka_bootstrap: str
) -> None:
    pipeline = Pipeline(kafka_bootstrap, sim)
    await pipeline.mark()
    worker.start(FETCHER_CONCURRENCY="2")
    worker.wait_ready()
    await pipeline.prime(worker)
    slow = await pipeline.make_transcript(words=2000)
    fast = await pipeline.make_transcript(words=100)
    while partition_of(fast) != partition_of(slow):
        fast = await pipeline.make_transcript(words=100)
    other = await pipeline.make_transcript(words=100)
    while partition_of(other) == partition_of(slow):
        other = await pipeline.make_transcript(words=100)
    group = worker.env["FETCHER_APP_ID"]
    try:
        proxy.stall_next = 1  # the slow transcript's download stops mid-body until released
        slow_offset = await end_offset(kafka_bootstrap, partition_of(slow))
        await pipeline.publish(slow)
        await wait_for(lambda: proxy.stalled >= 1, timeout=30, message="the slow download stalled")
        await pipeline.publish(fast)
        await pipeline.ready_events(fast.transcript_id, worker=worker)
        # The actor that did the fast one takes the next event only after acking it; once that next event's offset
        # is committed, a commit has been computed with the fast one acked and the slow one still in flight.
        other_end = await end_offset(kafka_bootstrap, partition_of(other)) + 1
        await pipeline.publish(other)
        await pipeline.ready_events(other.transcript_id, worker=worker)

        async def other_committed() -> bool:
            return await committed_offset(kafka_bootstrap, group, partition_of(other)) >= other_end

        await wait_for(other_committed, timeout=30, interval=0.2, message="the later event committed")
        assert await committed_offset(kafka_bootstrap, group, partition_of(slow)) <= slow_offset
        worker.kill()
    finally:
        proxy.reset()

    worker.start(FETCHER_CONCURRENCY="2")
    worker.wait_ready()
    await wait_state(worker, slow.recording_id, slow.transcript_id, "ready", timeout=90)
    assert len(await pipeline.all_ready(slow.transcript_id)) == 1
    assert len(await pipeline.all_ready(fast.transcript_id)) == 1
