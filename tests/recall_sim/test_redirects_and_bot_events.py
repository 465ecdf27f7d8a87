"""The simulator serves what Recall really sends (issue 14): download URLs on the API host that redirect to storage,
and the legacy ``bot.*`` event shapes that name the bot by ``data.bot_id``."""

from __future__ import annotations

import json

import httpx
import pytest

from pipeline_common.recall.events import parse_webhook_event
from tests.support.recall_sim import SSL_CONTEXT, run_recall_sim, sim_settings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PROVIDER = {"recallai_async": {"language_code": "auto"}}


async def test_download_urls_on_the_api_host_redirect_to_the_signed_storage_url() -> None:
    with run_recall_sim(sim_settings(recall_sim_download_redirect_ratio=1.0)) as sim:
        async with sim.client() as recall:
            recording = await sim.admin.create_recording()
            created = await recall.create_transcript(recording["id"], PROVIDER)
            await sim.admin.finish_transcript(created.id)
            artifact = await recall.retrieve_transcript(created.id)
            assert artifact.download_url is not None
            assert "/api/v1/download/transcripts/" in artifact.download_url
            assert "token=" in artifact.download_url
            async with httpx.AsyncClient(verify=SSL_CONTEXT) as plain:
                first = await plain.get(artifact.download_url)
                assert first.status_code == 302
                assert "/files/transcripts/" in first.headers["location"]
                refused = await plain.get(artifact.download_url, headers={"Authorization": "Token x"})
                assert refused.status_code == 400
                forged = await plain.get(artifact.download_url.replace("token=", "token=x"))
                assert forged.status_code == 403
            # The pipeline's client follows it (the allowlist holds the simulator's host).
            assert await recall.download(artifact.download_url, 10_000_000)


async def test_legacy_bot_status_change_events_carry_bot_id() -> None:
    with run_recall_sim(sim_settings(recall_sim_bot_events=True)) as sim:
        recording = await sim.admin.create_recording(bot_id="bot-legacy")

        async def sent() -> list[dict[str, object]] | None:
            found = await sim.admin.deliveries(event="bot.status_change")
            return found or None

        (delivery,) = await wait_for(sent, timeout=10, message="bot.status_change queued")
        body = delivery["body"]
        assert body["data"]["bot_id"] == "bot-legacy"  # type: ignore[index]
        assert "bot" not in body["data"]  # type: ignore[operator]
        event = parse_webhook_event(json.dumps(body))
        assert event.bot_id == "bot-legacy"
        assert recording["id"]
