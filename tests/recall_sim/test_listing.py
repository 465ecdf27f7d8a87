"""List Recordings in the simulator, walked by pipeline_common's paced lister, and the "lose webhooks" control."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_common.recall.errors import RecallBadRequest, RecallRateLimited
from pipeline_common.recall.listing import RecordingFilter, iter_recordings
from pipeline_common.recall.paging import ListPacer
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration


async def test_filters_and_cursor_pagination_return_each_matching_recording_once(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(page_size=2, webhook_url=None)
    ours = [await recall_sim.admin.create_recording(metadata={"team": "a"}) for _ in range(5)]
    await recall_sim.admin.create_recording(metadata={"team": "b"})
    await recall_sim.admin.create_recording(metadata={"team": "a"}, status="processing")
    pacer = ListPacer(6000)
    async with recall_sim.client() as recall:
        done_a = [
            r.id
            async for r in iter_recordings(
                recall, RecordingFilter(status_code="done", metadata={"team": "a"}), pacer=pacer
            )
        ]
        future = datetime.now(UTC) + timedelta(hours=1)
        none = [r async for r in iter_recordings(recall, RecordingFilter(created_at_after=future))]
    assert sorted(done_a) == sorted(r["id"] for r in ours)
    assert len(done_a) == len(set(done_a))
    assert pacer.calls == 3  # 5 items, pages of 2
    assert none == []


async def test_bad_filters_are_a_400_naming_the_field(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        with pytest.raises(RecallBadRequest, match="created_at_after"):
            await recall._request("GET", "/api/v1/recording/", params={"created_at_after": "yesterday"})


async def test_a_429_is_waited_out_when_paced_and_raised_when_not(recall_sim: RunningSim) -> None:
    await recall_sim.admin.create_recording()
    await recall_sim.admin.set_faults(
        {"endpoints": {"list_recordings": {"status": 429, "fail_next": 1, "retry_after": 0}}}
    )
    async with recall_sim.client() as recall:
        items = [r async for r in iter_recordings(recall, pacer=ListPacer(6000))]
        assert len(items) == 1
        await recall_sim.admin.set_faults({"endpoints": {"list_recordings": {"status": 429, "fail_next": 1}}})
        with pytest.raises(RecallRateLimited):
            _ = [r async for r in iter_recordings(recall)]


async def test_list_transcripts_by_recording(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        created = await recall.create_transcript(recording["id"], {"recallai_async": {}})
        found = [t.id async for t in recall.iter_transcripts(list_pacer=ListPacer(6000), recording_id=recording["id"])]
    assert found == [created.id]


async def test_lost_webhooks_are_recorded_and_never_delivered(recall_sim: RunningSim) -> None:
    lost = await recall_sim.admin.create_recording(status="processing")
    kept = await recall_sim.admin.create_recording(status="processing")
    await recall_sim.admin.request(
        "POST", "/admin/lost-webhooks", json={"recording_ids": [lost["id"]], "events": ["recording.done"]}
    )
    await recall_sim.admin.set_recording_status(lost["id"], "done")
    await recall_sim.admin.set_recording_status(kept["id"], "done")
    deliveries = await recall_sim.admin.deliveries(event="recording.done")
    states = {d["recording_id"]: d["state"] for d in deliveries}
    assert states[lost["id"]] == "lost"
    assert states[kept["id"]] != "lost"
    assert (await recall_sim.admin.request("GET", "/admin/lost-webhooks")) == {lost["id"]: ["recording.done"]}
    await recall_sim.admin.request("DELETE", "/admin/lost-webhooks")
    assert (await recall_sim.admin.request("GET", "/admin/lost-webhooks")) == {}


async def test_lose_recording_rate_loses_every_event_of_a_share_of_recordings(recall_sim: RunningSim) -> None:
    await recall_sim.admin.set_faults({"webhooks": {"lose_recording_rate": 0.5}})
    for _ in range(20):
        await recall_sim.admin.create_recording()

    async def all_sent() -> list[dict[str, object]] | None:
        found = await recall_sim.admin.deliveries(event="recording.done")
        return found if len(found) == 20 else None

    deliveries = await wait_for(all_sent, timeout=10)
    lost = sum(1 for d in deliveries if d["state"] == "lost")
    assert 0 < lost < 20
