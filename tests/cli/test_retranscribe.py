"""recall-pipeline recording retranscribe against the Recall simulator, run as the installed console script."""

from __future__ import annotations

import asyncio
import json
import subprocess

import pytest

from tests.cli.conftest import console
from tests.support.recall_sim import RunningSim

pytestmark = pytest.mark.integration


async def retranscribe(sim: RunningSim, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    variables = {"RECALL_API_KEY": sim.api_key, "RECALL_API_BASE_URL": sim.base_url, **env}
    return await asyncio.to_thread(console, "recording", "retranscribe", *args, env=variables)


async def test_retranscribe_creates_a_transcript_with_a_fresh_idempotency_key(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    first = await retranscribe(recall_sim, recording["id"])
    assert first.returncode == 0, first.stderr
    transcript_id = first.stdout.strip()
    assert transcript_id and "\n" not in transcript_id
    assert f"requested transcript {transcript_id} of recording {recording['id']} with recallai_async" in first.stderr
    assert recall_sim.api_key not in first.stdout + first.stderr

    provider = {"deepgram_async": {"model": "nova-3", "language": "multi"}}
    second = await retranscribe(recall_sim, recording["id"], "--provider", json.dumps(provider))
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() != transcript_id

    transcripts = {item["id"]: item for item in await recall_sim.admin.transcripts(recording["id"])}
    assert set(transcripts) == {transcript_id, second.stdout.strip()}
    creates = [call for call in await recall_sim.admin.calls() if call["endpoint"] == "create_transcript"]
    keys = [call["idempotency_key"] for call in creates if call["recording_id"] == recording["id"]]
    assert len(keys) == 2 and len(set(keys)) == 2
    assert all(key.startswith("recall-pipeline-cli-") for key in keys)


async def test_the_default_provider_is_the_head_of_the_configured_chain(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    chain = json.dumps([{"assembly_ai_async": {"language_detection": True}}, {"recallai_async": {}}])
    result = await retranscribe(recall_sim, recording["id"], TRANSCRIBER_PROVIDERS=chain)
    assert result.returncode == 0, result.stderr
    assert "with assembly_ai_async" in result.stderr


async def test_recall_refusals_give_meaningful_exit_codes(recall_sim: RunningSim) -> None:
    missing = await retranscribe(recall_sim, "no-such-recording")
    assert missing.returncode == 1
    assert "Recall did not create a transcript (terminal)" in missing.stderr
    assert "HTTP 404" in missing.stderr
    assert missing.stdout == ""

    recording = await recall_sim.admin.create_recording()
    wrong_key = await retranscribe(recall_sim, recording["id"], RECALL_API_KEY="not-the-key")
    assert wrong_key.returncode == 2
    assert "Recall rejected RECALL_API_KEY" in wrong_key.stderr
    assert "not-the-key" not in wrong_key.stderr

    unreachable = await retranscribe(recall_sim, recording["id"], RECALL_API_BASE_URL="http://127.0.0.1:1")
    assert unreachable.returncode == 1
    assert "Recall did not create a transcript (retryable)" in unreachable.stderr
