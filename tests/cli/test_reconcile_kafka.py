"""recall-pipeline reconcile against a real broker and the Recall simulator (the console script, as the CronJob runs
it): what it publishes, with which headers, what it remembers in recall.reconciler.state, and what a dry run leaves
alone. The whole pipeline recovering is tests/e2e/test_reconcile.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from typing import Any

import pytest

from pipeline_cli.kafka import KafkaReader, Record
from pipeline_cli.reconcile.decide import SOURCE, ce_id
from pipeline_common.kafka import ensure_topics
from pipeline_common.recall.events import parse_webhook_event
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import (
    RECONCILER_STATE,
    RECORDING_EVENTS,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
)
from tests.cli.conftest import console
from tests.support.kafka import KafkaTestClient
from tests.support.recall_sim import RunningSim

pytestmark = pytest.mark.integration

TOPICS = [RECORDING_EVENTS, TRANSCRIPT_EVENTS, TRANSCRIPTS_READY, TRANSCRIPTS_FAILED, RECONCILER_STATE]


async def run(sim: RunningSim, bootstrap: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_CREATE_TOPICS": "false",
        "RECALL_API_KEY": sim.api_key,
        "RECALL_API_BASE_URL": sim.base_url,
    }
    return await asyncio.to_thread(console, *args, env=env, timeout=120)


def summary(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stderr
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return parsed


async def records(bootstrap: str, key: str) -> list[Record]:
    async with KafkaReader(KafkaSettings(kafka_bootstrap_servers=[bootstrap])) as reader:
        return [r async for r in reader.snapshot([RECORDING_EVENTS.name]) if r.key_text == key]


async def test_reconcile_publishes_what_is_missing_once_and_remembers_where_it_stopped(
    recall_sim: RunningSim, kafka_bootstrap: str, kafka: KafkaTestClient
) -> None:
    await ensure_topics(KafkaSettings(kafka_bootstrap_servers=[kafka_bootstrap]), TOPICS)
    team = uuid.uuid4().hex[:8]
    missing = await recall_sim.admin.create_recording(metadata={"team": team})
    known = await recall_sim.admin.create_recording(metadata={"team": team})
    await recall_sim.admin.create_recording(metadata={"team": team}, status="processing")
    await recall_sim.admin.create_recording(metadata={"team": "someone-else"})
    await kafka.produce(TRANSCRIPTS_READY.name, [(known["id"].encode(), b"{}")])
    args = ("reconcile", "--grace", "0s", "--metadata", f"team={team}", "--json", "--list-per-minute", "60")

    first = summary(await run(recall_sim, kafka_bootstrap, *args))
    assert (first["seen"], first["already_known"], first["not_done"]) == (3, 1, 1)
    assert [a["recording_id"] for a in first["actions"]] == [missing["id"]]
    (published,) = await records(kafka_bootstrap, missing["id"])
    assert published.header("ce_source") == SOURCE
    assert published.header("ce_type") == "recording.done"
    assert published.header("ce_id") == ce_id("recording.done", missing["id"])
    event = parse_webhook_event(published.value or b"")
    assert (event.event, event.recording_id, event.recording_metadata) == (
        "recording.done",
        missing["id"],
        {"team": team},
    )

    second = summary(await run(recall_sim, kafka_bootstrap, *args))
    assert second["published"] == 0
    assert second["already_known"] == 2
    assert second["watermark_before"] == first["watermark_after"] != "none"
    assert len(await records(kafka_bootstrap, missing["id"])) == 1


async def test_dry_runs_list_and_write_nothing(recall_sim: RunningSim, kafka_bootstrap: str) -> None:
    await ensure_topics(KafkaSettings(kafka_bootstrap_servers=[kafka_bootstrap]), TOPICS)
    team = uuid.uuid4().hex[:8]
    recording = await recall_sim.admin.create_recording(metadata={"team": team})
    result = await run(
        recall_sim, kafka_bootstrap, "reconcile", "--dry-run", "--grace", "0s", "--metadata", f"team={team}"
    )
    assert result.returncode == 0, result.stderr
    assert f"would publish recording.done {recording['id']}" in result.stdout
    assert "seen 1, already known 0, would publish 1" in result.stdout
    assert "watermark after" not in result.stdout
    assert await records(kafka_bootstrap, recording["id"]) == []
    assert recall_sim.api_key not in result.stdout + result.stderr
