"""Issue 14 item 6: pace Recall calls per bot and per workspace before Recall has to answer 429."""

from __future__ import annotations

import pytest

from pipeline_common.recall.errors import RecallRateLimited
from pipeline_common.recall.pacing import Operation, RecallPacer, SlidingWindow
from pipeline_common.settings import RecallApiSettings
from tests.support.recall_sim import RunningSim

RECALL = {"recallai_async": {"language_code": "auto"}}


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.unit
def test_a_window_never_grants_more_than_its_limit_in_any_window() -> None:
    time = FakeTime()
    window = SlidingWindow(3, 60.0, clock=time.clock)
    assert [window.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert window.reserve() == pytest.approx(60.0)  # queued behind the first grant
    assert window.reserve() == pytest.approx(60.0)
    time.now += 61
    assert window.reserve() == 0.0  # (1001, 1061] holds the two queued grants: room for one more
    assert window.reserve() == pytest.approx(59.0)  # the next waits until the first queued one leaves


@pytest.mark.unit
async def test_creates_are_paced_per_bot_and_retrieves_per_workspace() -> None:
    time = FakeTime()
    pacer = RecallPacer(create_per_bot_per_minute=5, retrieve_per_minute=300, clock=time.clock, sleep=time.sleep)
    for _ in range(5):
        assert await pacer.wait(Operation.CREATE, "bot-1") == 0
    assert await pacer.wait(Operation.CREATE, "bot-2") == 0  # another bot has its own window
    for _ in range(300):
        assert await pacer.wait(Operation.RETRIEVE) == 0
    assert await pacer.wait(Operation.LIST) == 0  # not configured: not paced
    assert await pacer.wait(Operation.CREATE, "bot-1") == pytest.approx(60.0)
    assert time.slept == [pytest.approx(60.0)]


@pytest.mark.unit
def test_pacing_settings_default_to_recalls_documented_limits() -> None:
    settings = RecallApiSettings()
    assert (
        settings.recall_pace_create_per_bot_per_minute,
        settings.recall_pace_retrieve_per_minute,
        settings.recall_pace_list_per_minute,
        settings.recall_pace_delete_per_minute,
    ) == (5, 300, 60, 300)
    pacer = RecallPacer.from_settings(RecallApiSettings(recall_pace_create_per_bot_per_minute=0))
    assert pacer.limit(Operation.CREATE) is None and pacer.limit(Operation.RETRIEVE) == 300


@pytest.mark.integration
async def test_paced_creates_are_never_refused_where_unpaced_ones_are(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(create_per_bot_per_window=2, rate_window_seconds=1.0)
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as unpaced:
        for _ in range(2):
            await unpaced.create_transcript(recording["id"], RECALL, bot_id=recording["bot"]["id"])
        with pytest.raises(RecallRateLimited):
            await unpaced.create_transcript(recording["id"], RECALL, bot_id=recording["bot"]["id"])
    other = await recall_sim.admin.create_recording()
    pacer = RecallPacer(create_per_bot_per_minute=2, window_seconds=1.2)
    async with recall_sim.client(pacer=pacer) as paced:
        for _ in range(4):
            await paced.create_transcript(other["id"], RECALL, bot_id=other["bot"]["id"])
    statuses = [call["status"] for call in await recall_sim.admin.calls(recording_id=other["id"])]
    assert statuses.count(200) == 4 and 429 not in statuses


@pytest.mark.unit
async def test_a_bots_window_is_forgotten_once_its_grants_left_the_window() -> None:
    """Issue 12 (state growth): a window with no grant in the last ``window_seconds`` paces nothing, so keeping it
    (one per bot the transcriber ever saw, up to 10,000) was memory growing with the recordings, not state."""
    time = FakeTime()
    pacer = RecallPacer(create_per_bot_per_minute=5, clock=time.clock, sleep=time.sleep)
    for bot in range(1000):
        assert await pacer.wait(Operation.CREATE, f"bot-{bot}") == 0
        time.now += 1.0  # one new bot a second: at most the last minute's bots may be kept
    assert 0 < len(pacer) <= 61
    assert [await pacer.wait(Operation.CREATE, "bot-999") for _ in range(4)] == [0, 0, 0, 0]
    assert await pacer.wait(Operation.CREATE, "bot-999") == pytest.approx(59.0)  # a recent bot is still paced
