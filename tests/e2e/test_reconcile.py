"""Lost webhooks, recovered: the real processes (Kafka, the simulator, ingest, transcriber, fetcher) with the
simulator losing recording.done for some recordings and transcript.done for others; ``recall-pipeline reconcile``
publishes what is missing and every recording ends exactly once; a second run publishes nothing; ``backfill
--dry-run`` lists what it would do and writes nothing."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from devkit import stack
from pipeline_cli.kafka import KafkaReader
from pipeline_common.settings import KafkaSettings
from tests.support.waiting import wait_for_sync

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CONSOLE_SCRIPT = Path(sys.executable).parent / "recall-pipeline"

LOSE_RECORDING_DONE = [f"lost-rec-{uuid.uuid4().hex[:10]}" for _ in range(2)]
LOSE_TRANSCRIPT_DONE = [f"lost-tr-{uuid.uuid4().hex[:10]}" for _ in range(2)]
DELIVERED = [f"ok-{uuid.uuid4().hex[:10]}" for _ in range(2)]
ALL = LOSE_RECORDING_DONE + LOSE_TRANSCRIPT_DONE + DELIVERED


@pytest.fixture(scope="module")
def profile() -> Iterator[stack.Profile]:
    profile = stack.ephemeral_profile("e2e-reconcile")
    shutil.rmtree(profile.home, ignore_errors=True)
    with stack.running(profile, sim_env={"RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.3"}):
        yield profile


def admin(profile: stack.Profile, method: str, path: str, **kwargs: Any) -> Any:
    response = httpx.request(
        method, f"http://127.0.0.1:{profile.sim_port}{path}", timeout=10, trust_env=False, **kwargs
    )
    response.raise_for_status()
    return response.json() if response.content else None


def recall_pipeline(profile: stack.Profile, *args: str) -> str:
    """The installed console script, as the CronJob runs it."""
    env = {
        name: value for name, value in os.environ.items() if not name.startswith(("RECONCILE_", "RECALL_", "KAFKA_"))
    }
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": profile.bootstrap,
        "KAFKA_CREATE_TOPICS": "true",
        "KAFKA_TOPIC_REPLICATION_FACTOR": "1",
        "RECALL_API_KEY": stack.DEV_API_KEY,
        "RECALL_API_BASE_URL": f"http://127.0.0.1:{profile.sim_port}",
    }
    result = subprocess.run(
        [str(CONSOLE_SCRIPT), *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )
    assert result.returncode == 0, result.stderr + result.stdout
    return result.stdout


def announcements(profile: stack.Profile) -> tuple[Counter[str], Counter[str], Counter[tuple[str, str]]]:
    """(transcripts.ready per recording, transcripts.failed per recording, (topic, ce_source) per recording id)."""

    async def read() -> tuple[Counter[str], Counter[str], Counter[tuple[str, str]]]:
        ready: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        sources: Counter[tuple[str, str]] = Counter()
        topics = ["transcripts.ready", "transcripts.failed", "recall.recording.events", "recall.transcript.events"]
        async with KafkaReader(KafkaSettings(kafka_bootstrap_servers=[profile.bootstrap])) as reader:
            async for record in reader.snapshot(topics):
                key = record.key_text or ""
                if record.topic == "transcripts.ready":
                    ready[key] += 1
                elif record.topic == "transcripts.failed":
                    failed[key] += 1
                else:
                    sources[(key, f"{record.topic} {record.header('ce_source')} {record.header('ce_type')}")] += 1
        return ready, failed, sources

    return asyncio.run(read())


def test_lost_webhooks_are_recovered_once_and_a_second_run_publishes_nothing(profile: stack.Profile) -> None:
    admin(
        profile,
        "POST",
        "/admin/lost-webhooks",
        json={"recording_ids": LOSE_RECORDING_DONE, "events": ["recording.done"]},
    )
    admin(
        profile,
        "POST",
        "/admin/lost-webhooks",
        json={"recording_ids": LOSE_TRANSCRIPT_DONE, "events": ["transcript.done"]},
    )
    for rid in ALL:
        admin(profile, "POST", "/admin/recordings", json={"id": rid, "metadata": {"team": "e2e"}})

    # The delivered ones end; the transcript.done-lost ones get a finished transcript the pipeline never hears of.
    def before() -> bool:
        ready, _, _ = announcements(profile)
        done = [t for t in admin(profile, "GET", "/admin/transcripts") if t["status"]["code"] == "done"]
        lost_done = {t["recording"]["id"] for t in done} & set(LOSE_TRANSCRIPT_DONE)
        return all(ready[rid] == 1 for rid in DELIVERED) and lost_done == set(LOSE_TRANSCRIPT_DONE)

    wait_for_sync(before, timeout=120, interval=0.5, message="delivered recordings ready, lost transcripts done")
    ready, failed, _ = announcements(profile)
    assert not any(ready[rid] or failed[rid] for rid in LOSE_RECORDING_DONE + LOSE_TRANSCRIPT_DONE)

    first = json.loads(recall_pipeline(profile, "reconcile", "--grace", "0s", "--metadata", "team=e2e", "--json"))
    assert first["recordings_published"] == len(LOSE_RECORDING_DONE), first
    assert first["transcripts_published"] == len(LOSE_TRANSCRIPT_DONE), first
    assert {a["recording_id"] for a in first["actions"]} == set(LOSE_RECORDING_DONE + LOSE_TRANSCRIPT_DONE)

    def all_ended() -> bool:
        ready, failed, _ = announcements(profile)
        return all(ready[rid] + failed[rid] >= 1 for rid in ALL)

    wait_for_sync(all_ended, timeout=120, interval=0.5, message="every recording announced")
    # An overlapping run while the pipeline settles must change nothing either.
    second = json.loads(recall_pipeline(profile, "reconcile", "--grace", "0s", "--metadata", "team=e2e", "--json"))
    assert second["published"] == 0, second
    assert second["already_known"] == len(ALL), second
    assert first["watermark_after"] != "none"
    assert second["watermark_before"] == first["watermark_after"]  # read back from recall.reconciler.state

    ready, failed, sources = announcements(profile)
    assert {rid: ready[rid] for rid in ALL} == dict.fromkeys(ALL, 1)
    assert not any(failed[rid] for rid in ALL)
    # One paid transcript per recording: the synthesised events made nobody create a second one.
    transcripts = Counter(t["recording"]["id"] for t in admin(profile, "GET", "/admin/transcripts"))
    assert {rid: transcripts[rid] for rid in ALL} == dict.fromkeys(ALL, 1)
    synthesised = {key for (key, what), _ in sources.items() if "urn:recall-pipeline:reconciler" in what}
    assert synthesised == set(LOSE_RECORDING_DONE + LOSE_TRANSCRIPT_DONE)


def test_backfill_dry_run_lists_what_it_would_publish_and_writes_nothing(profile: stack.Profile) -> None:
    old = f"before-{uuid.uuid4().hex[:10]}"
    admin(profile, "POST", "/admin/recordings", json={"id": old, "metadata": {"team": "e2e"}, "webhooks": False})
    since = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    output = recall_pipeline(
        profile, "backfill", "--since", since, "--dry-run", "--grace", "0s", "--metadata", "team=e2e"
    )
    assert f"would publish recording.done {old}" in output
    assert "would publish 1 " in output
    _, _, sources = announcements(profile)
    assert not any(key == old for key, _ in sources)
