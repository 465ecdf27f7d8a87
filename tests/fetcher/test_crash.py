"""Crashes: the worker is SIGKILLed at the worst moments and restarted; every transcript is announced exactly once
and nothing half-written is left in the store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_common.store import TranscriptKeys
from tests.fetcher.support import (
    DownloadProxy,
    FetcherWorker,
    Pipeline,
    SimTranscript,
    start_primed,
    wait_state,
    worker_env,
)
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("clean_faults")]


@pytest.fixture
def store_root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def crash_worker(
    tmp_path: Path, kafka_bootstrap: str, sim: RunningSim, proxy: DownloadProxy, store_root: Path
) -> Iterator[FetcherWorker]:
    env = worker_env(
        bootstrap=kafka_bootstrap,
        sim=sim,
        store_url=store_root.as_uri(),
        app_id=f"fetcher-crash-{uuid.uuid4().hex[:10]}",
        data_dir=tmp_path / "data",
    )
    worker = FetcherWorker(env=env, log_dir=tmp_path)
    yield worker
    worker.kill()


def stored(store_root: Path, transcript: SimTranscript) -> set[str]:
    folder = store_root / TranscriptKeys(transcript.recording_id, transcript.transcript_id).prefix
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


async def restart_and_expect_one_event(
    worker: FetcherWorker, pipeline: Pipeline, transcript: SimTranscript, **overrides: str
) -> None:
    worker.start(**overrides)
    worker.wait_ready()
    await wait_state(
        worker, transcript.recording_id, transcript.transcript_id, "ready", timeout=180
    )  # a restart on a loaded 2-core machine
    events = await pipeline.all_ready(transcript.transcript_id)
    assert len(events) == 1, events


async def test_killed_after_the_store_write_and_before_the_event(
    crash_worker: FetcherWorker, pipeline: Pipeline, store_root: Path
) -> None:
    await start_primed(crash_worker, pipeline, FETCHER_FAULT_PAUSE_BEFORE_ANNOUNCE_SECONDS="120")
    transcript = await pipeline.make_transcript(words=200)
    await pipeline.publish(transcript)
    manifest = store_root / TranscriptKeys(transcript.recording_id, transcript.transcript_id).manifest
    await wait_for(manifest.exists, timeout=30, message="manifest written")
    crash_worker.kill()
    assert await pipeline.all_ready(transcript.transcript_id) == []

    await restart_and_expect_one_event(
        crash_worker, pipeline, transcript, FETCHER_FAULT_PAUSE_BEFORE_ANNOUNCE_SECONDS="0"
    )
    assert "manifest.json" in stored(store_root, transcript)


async def test_killed_after_the_event_and_before_the_commit(
    crash_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, store_root: Path
) -> None:
    await start_primed(crash_worker, pipeline, FETCHER_FAULT_PAUSE_AFTER_ANNOUNCE_SECONDS="120")
    transcript = await pipeline.make_transcript(words=200)
    await pipeline.publish(transcript)
    await pipeline.ready_events(transcript.transcript_id, worker=crash_worker)
    crash_worker.kill()

    await restart_and_expect_one_event(
        crash_worker, pipeline, transcript, FETCHER_FAULT_PAUSE_AFTER_ANNOUNCE_SECONDS="0"
    )
    assert 'fetcher_duplicates_suppressed_total{via="topic"} 1.0' in crash_worker.metrics()
    downloads = await sim.admin.calls(endpoint="download", transcript_id=transcript.transcript_id)
    assert len(downloads) == 1  # the complete manifest was reused, not downloaded again


async def test_killed_mid_download(
    crash_worker: FetcherWorker, pipeline: Pipeline, proxy: DownloadProxy, store_root: Path
) -> None:
    await start_primed(crash_worker, pipeline)
    transcript = await pipeline.make_transcript(words=3000)
    proxy.stall_next = 1  # half the body, then nothing
    await pipeline.publish(transcript)
    await wait_for(lambda: proxy.stalled >= 1, timeout=30, message="download stalled mid-body")
    crash_worker.kill()
    proxy.release.set()
    assert stored(store_root, transcript) == set()

    await restart_and_expect_one_event(crash_worker, pipeline, transcript)
    assert proxy.requests.count(f"/files/transcripts/{transcript.transcript_id}.json") == 2
    assert "transcript.json" in stored(store_root, transcript)
