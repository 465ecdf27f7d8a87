"""A zombie fetcher: a replica that lost its partition while it held a transcript must not announce it after the new
owner did (found by the distributed ``make chaos``, seed 1806: two ``transcripts.ready`` for one transcript while the
fetcher was scaled during a rebalance).

Replica A stores a transcript and pauses before its announcement (the crash tests' fault injection); it is frozen
(SIGSTOP) past its session timeout, so replica B takes the partition over, finds A's manifest, looks for the event
(not there yet) and announces it. A is then resumed and goes on with its announcement: it must be fenced. Exactly one
``transcripts.ready`` may be readable (read_committed, as downstream services read).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline_common.store import TranscriptKeys
from tests.fetcher.support import DownloadProxy, FetcherWorker, Pipeline, start_primed, wait_state, worker_env
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("clean_faults")]


@pytest.fixture
def replicas(
    tmp_path: Path, kafka_bootstrap: str, sim: RunningSim, proxy: DownloadProxy
) -> Iterator[tuple[FetcherWorker, FetcherWorker]]:
    app_id = f"fetcher-zombie-{uuid.uuid4().hex[:10]}"
    workers = tuple(
        FetcherWorker(
            env=worker_env(
                bootstrap=kafka_bootstrap,
                sim=sim,
                store_url=(tmp_path / "store").as_uri(),
                app_id=app_id,
                data_dir=tmp_path / f"data-{name}",
                FETCHER_SESSION_TIMEOUT_SECONDS="8",
            ),
            log_dir=tmp_path,
            name=name,
        )
        for name in ("fetcher-a", "fetcher-b")
    )
    yield workers[0], workers[1]
    for worker in workers:
        if worker.process is not None and worker.alive():
            worker.process.send_signal(signal.SIGCONT)
        worker.kill()


async def test_a_replica_that_lost_its_partition_cannot_announce_what_the_new_owner_announced(
    replicas: tuple[FetcherWorker, FetcherWorker], pipeline: Pipeline, tmp_path: Path
) -> None:
    zombie, owner = replicas
    await start_primed(zombie, pipeline, FETCHER_FAULT_PAUSE_BEFORE_ANNOUNCE_SECONDS="30")
    transcript = await pipeline.make_transcript(words=200)
    await pipeline.publish(transcript)
    manifest = tmp_path / "store" / TranscriptKeys(transcript.recording_id, transcript.transcript_id).manifest
    await wait_for(manifest.exists, timeout=60, message="manifest written by the first replica")

    assert zombie.process is not None
    zombie.process.send_signal(signal.SIGSTOP)  # past its session timeout: its partitions move to the other replica
    owner.start()
    owner.wait_ready(timeout=120)
    await wait_state(owner, transcript.recording_id, transcript.transcript_id, "ready", timeout=120)

    zombie.process.send_signal(signal.SIGCONT)  # its pause is over: it goes on with the announcement it held

    def zombie_went_on() -> bool:
        log = zombie.log_tail(200_000)
        return transcript.transcript_id in log and (
            "transcripts.ready emitted" in log or "retry scheduled" in log or "internal error" in log
        )

    await wait_for(zombie_went_on, timeout=60, interval=0.2, message="the frozen replica resumed its announcement")
    events = await pipeline.all_ready(transcript.transcript_id)
    assert len(events) == 1, events
    log = zombie.log_tail(200_000)
    assert "transcripts.ready emitted" not in log
    assert "announcement not committed" in log  # it tried, and the broker refused it (ProducerFenced)
