"""``make chaos`` distributed, in miniature, so CI guards it: a 3-node Kafka cluster (replication factor 3,
min.insync.replicas 2) and two replicas of ingest, transcriber and fetcher; a few dozen recordings while the node
leading the most partitions is SIGKILLed and every service is restarted replica by replica (SIGTERM, within the
manifests' grace period, then ready), under Recall's API faults and webhook chaos. Then the same ledger as the
single-broker run. The harness runs as a subprocess on free ports and writes its ledger as JSON."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.support.broker import ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDINGS = 30
SEED = int(os.environ.get("CHAOS_DISTRIBUTED_SEED", "20261201"))
HARNESS_TIMEOUT = 300


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    ledger_dir = tmp_path_factory.mktemp("chaos-distributed-ledger")
    name = f"chaos-dist-test-{uuid.uuid4().hex[:8]}"
    argv = [
        sys.executable,
        str(ROOT / "scripts" / "chaos.py"),
        "--brokers=3",
        "--replicas=2",
        f"--recordings={RECORDINGS}",
        f"--seed={SEED}",
        "--feed-seconds=20",
        "--no-kill",
        "--no-broker-restart",
        "--no-scale-fetcher",
        "--no-freeze",
        "--no-failover",
        "--no-provider-outage",
        "--no-fuzz",
        # Injected worker exceptions (p=0.05 per handled event) are a chance on 30 recordings: their check, "injected
        # in both workers", failed a run by chance (0 of ~30 fetcher attempts). make chaos runs them on more.
        "--no-worker-exceptions",
        "--time-scale=0.005",
        "--transcript-delay=0.2",
        "--session-timeout=6",
        "--drain-timeout=90",
        "--stall-timeout=45",
        f"--name={name}",
        f"--ledger-dir={ledger_dir}",
        "--clean",
    ]
    harness = subprocess.Popen(
        argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ}
    )
    try:
        output, _ = harness.communicate(timeout=HARNESS_TIMEOUT)
    except subprocess.TimeoutExpired:
        harness.send_signal(signal.SIGTERM)  # the harness stops its stack on SIGTERM
        output, _ = harness.communicate(timeout=120)
        pytest.fail(f"the distributed chaos harness did not finish within {HARNESS_TIMEOUT}s:\n{output[-6000:]}")
    ledgers = sorted(Path(ledger_dir).glob("ledger-*.json"))
    assert ledgers, f"no ledger written (exit {harness.returncode}):\n{output[-6000:]}"
    return json.loads(ledgers[-1].read_text()), f"exit {harness.returncode}; stack in var/{name}/\n{output[-6000:]}"


def test_the_ledger_balances(run: tuple[dict[str, Any], str]) -> None:
    ledger, output = run
    assert ledger["ok"] and not [check for check in ledger["checks"] if not check["ok"]], output


def test_every_recording_ended_exactly_once_and_none_was_paid_twice(run: tuple[dict[str, Any], str]) -> None:
    ledger, output = run
    recordings, creates, webhooks = ledger["recordings"], ledger["creates"], ledger["webhooks"]
    assert recordings["planned"] == RECORDINGS
    assert (recordings["lost"], recordings["duplicated"]) == (0, 0), output
    assert creates["paid_twice"] == 0, output
    assert webhooks["missing_from_kafka"] == webhooks["not_brought_in"] == 0, output


def test_the_leading_broker_was_killed_and_came_back(run: tuple[dict[str, Any], str]) -> None:
    ledger, output = run
    kills = [fault for fault in ledger["faults"] if fault["kind"] == "broker-sigkill"]
    assert len(kills) == 1, output
    (measured,) = ledger["measurements"]["broker_leader_kill"]
    leaders = measured["leaders_before"]
    assert leaders[str(measured["node"])] == max(leaders.values())
    assert ledger["run"]["profile"]["kafka"].count(",") == 2  # three nodes


def test_every_replica_was_restarted_gracefully_within_its_grace_period(run: tuple[dict[str, Any], str]) -> None:
    ledger, output = run
    rolled = {fault["target"] for fault in ledger["faults"] if fault["kind"] == "rolling-restart"}
    assert rolled == {"ingest", "transcriber", "fetcher"}, output
    stops = ledger["measurements"]["graceful_stop"]
    assert {stop["replica"] for stop in stops} == {
        f"{service}{suffix}" for service in ("ingest", "transcriber", "fetcher") for suffix in ("", "-2")
    }
    assert all(stop["stopped_in_s"] <= stop["grace_s"] for stop in stops), stops
