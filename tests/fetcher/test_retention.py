"""Retention in the real worker (faust, a real broker): an ended recording leaves the Table. faust writes a Table key
only inside stream iteration, so a sweep that wrote from its timer never removed anything; the dict-driven tests
could not see that (tests/*/test_worker_core.py now use a table with faust's rule)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fetcher.conftest import start_worker
from tests.fetcher.support import DownloadProxy, FetcherWorker, Pipeline
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]


@pytest.fixture(scope="module")
def short_retention_worker(
    tmp_path_factory: pytest.TempPathFactory, kafka_bootstrap: str, sim: RunningSim, proxy: DownloadProxy
) -> Iterator[FetcherWorker]:
    root: Path = tmp_path_factory.mktemp("retention-store")
    worker = start_worker(
        tmp_path_factory,
        kafka_bootstrap,
        sim,
        root.as_uri(),
        FETCHER_RETENTION_SECONDS="1",
        FETCHER_SWEEP_SECONDS="1",
    )
    yield worker
    worker.stop()


def expired_total(worker: FetcherWorker) -> float:
    found = re.search(r"^fetcher_expired_total (\S+)$", worker.metrics(), re.MULTILINE)
    return float(found.group(1)) if found else 0.0


async def test_an_ended_recording_leaves_the_table_after_the_retention(
    short_retention_worker: FetcherWorker, pipeline: Pipeline
) -> None:
    worker = short_retention_worker
    transcript = await pipeline.make_transcript(words=20)
    await pipeline.publish(transcript)
    await pipeline.ready_events(transcript.transcript_id, worker=worker)

    async def gone_from_the_table() -> bool:
        return await asyncio.to_thread(worker.recording, transcript.recording_id) is None

    try:
        await wait_for(gone_from_the_table, timeout=30, interval=0.2, message="the recording left the Table")
    except AssertionError as error:
        raise AssertionError(f"{error}\nworker log:\n{worker.log_tail()}") from None
    assert expired_total(worker) >= 1
    assert "Cannot modify table" not in worker.log_tail(20_000)
