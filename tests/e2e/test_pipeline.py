"""The real processes end to end: Kafka, the simulator, ingest, transcriber and fetcher as separate processes, started
by the same supervisor as ``make up`` and driven by the same code as ``make demo``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.support.broker import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import demo
import stack

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


def _forbidden_strings() -> dict[str, str]:
    """What must never appear in any log line of any process (issue 14 item 10)."""
    secret = stack.dev_webhook_secret()
    forbidden = {
        "the API key": stack.DEV_API_KEY,
        "the webhook secret": secret,
        "the webhook secret's key": secret.removeprefix("whsec_"),
        "a signed URL's signature": "X-Sim-Signature=",
        "a signed URL's expiry": "X-Sim-Expires=",
        "a download token": "token=",
        "an S3 signature": "X-Amz-Signature=",
        "an S3 credential": "X-Amz-Credential=",
    }
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        value = os.environ.get(name)
        if value:
            forbidden[name] = value
    return forbidden


def test_every_log_line_of_every_process_is_json_and_carries_no_secret(
    finished: tuple[stack.Profile, demo.Demo],
) -> None:
    # Issue 14 items 10 and 11: faust workers' lines were "[time] [pid] [INFO] {dict repr}"; httpx logged every
    # pre-signed download URL at INFO.
    profile, _ = finished
    forbidden = _forbidden_strings()
    files = {path.stem: path.read_text(errors="replace").splitlines() for path in profile.logs.glob("*.log")}
    assert {"ingest", "transcriber", "fetcher", "recall_sim"} <= set(files), sorted(files)
    problems: list[str] = []
    for name, lines in files.items():
        assert lines, f"{name} logged nothing"
        for number, line in enumerate(lines, 1):
            for what, value in forbidden.items():
                if value in line:
                    problems.append(f"{name}:{number}: {what} in {line[:200]!r}")
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                problems.append(f"{name}:{number}: not one JSON object: {line[:200]!r}")
    assert problems == [], "\n".join(problems[:40])


def test_redirecting_downloads_and_legacy_bot_events_were_exercised(
    finished: tuple[stack.Profile, demo.Demo],
) -> None:
    # Issue 14 items 2 and 4: the simulator serves both, as Recall does; the pipeline must take both.
    profile, _ = finished
    base = f"http://127.0.0.1:{profile.sim_port}"
    calls = httpx.get(f"{base}/admin/calls", params={"endpoint": "download"}, timeout=10).json()
    redirected = [call for call in calls if call["outcome"] == "redirected"]
    assert redirected, "no download URL redirected"
    assert not [call for call in calls if call["authorization_sent"]]
    deliveries = httpx.get(f"{base}/admin/deliveries", params={"event": "bot.status_change"}, timeout=10).json()
    assert deliveries, "no legacy bot event sent"
    assert all(delivery["delivered_count"] >= 1 for delivery in deliveries), deliveries[:3]
    refused = [a for d in deliveries for a in d["attempts"] if a["status"] is not None and a["status"] >= 400]
    assert refused == []
