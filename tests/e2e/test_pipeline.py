"""The real processes end to end: Kafka, the simulator, ingest, transcriber and fetcher as separate processes, started
by the same supervisor as ``make up`` and driven by the same code as ``make demo``."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator

import pytest

from devkit import demo, stack
from tests.support.broker import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDINGS = 10
# Recall delivers at least once and in no particular order: make the simulator do both, often.
WEBHOOK_CHAOS = '{"webhooks": {"duplicate_rate": 0.5, "out_of_order_rate": 0.3, "out_of_order_delay_seconds": 0.5}}'


@pytest.fixture(scope="module")
def finished() -> Iterator[tuple[stack.Profile, demo.Demo]]:
    profile = stack.ephemeral_profile("e2e")
    shutil.rmtree(profile.home, ignore_errors=True)
    run = demo.Demo(profile)
    run.plan(RECORDINGS)
    with stack.running(
        profile, sim_env={"RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.3", "RECALL_SIM_FAULTS": WEBHOOK_CHAOS}
    ):
        asyncio.run(run.collect(180))
        yield profile, run


def test_every_recording_ends_as_the_mix_says(finished: tuple[stack.Profile, demo.Demo]) -> None:
    _, run = finished
    outcomes = {item.recording_id: (item.kind, item.problems()) for item in run.planned.values()}
    assert all(not problems for _, problems in outcomes.values()), outcomes
    kinds = sorted(item.kind for item in run.planned.values())
    assert kinds.count("doomed") == 1 and kinds.count("empty") == 1 and kinds.count("fallback") == 2


def test_duplicate_and_out_of_order_deliveries_change_nothing(finished: tuple[stack.Profile, demo.Demo]) -> None:
    _, run = finished
    # One transcripts.ready per recording (or one transcripts.failed), however often Recall delivered.
    assert {rid: n for rid, n in run.ready_counts.items() if n > 1} == {}
    assert {rid: n for rid, n in run.failed_counts.items() if n > 1} == {}
    assert sum(run.ready_counts.values()) == RECORDINGS - 1
    assert sum(run.failed_counts.values()) == 1


def test_the_example_consumer_receives_every_transcripts_ready(finished: tuple[stack.Profile, demo.Demo]) -> None:
    profile, run = finished
    ready_ids = {item.recording_id for item in run.planned.values() if item.ready is not None}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "consume_transcripts.py"),
            "--from-beginning",
            "--max-events",
            str(RECORDINGS),
            "--timeout",
            "60",
        ],
        env={"KAFKA_BOOTSTRAP_SERVERS": profile.bootstrap, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert all(recording_id in result.stdout for recording_id in ready_ids), result.stdout
