"""The list pacer (Recall's ~60 list calls a minute) and the filters' query, in-process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline_common.recall.errors import RecallInvalidArgument
from pipeline_common.recall.listing import RecordingFilter
from pipeline_common.recall.paging import ListPacer

pytestmark = pytest.mark.unit


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_calls_are_spaced_evenly_under_the_limit() -> None:
    time = FakeTime()
    pacer = ListPacer(30, clock=time.clock, sleep=time.sleep)
    for _ in range(4):
        await pacer.wait()
    assert time.slept == [2.0, 2.0, 2.0]
    assert pacer.calls == 4
    time.now += 10  # idle for longer than the interval: no wait
    await pacer.wait()
    assert time.slept == [2.0, 2.0, 2.0]


async def test_a_429_waits_retry_after_else_a_doubling_interval() -> None:
    time = FakeTime()
    pacer = ListPacer(60, clock=time.clock, sleep=time.sleep)
    await pacer.rate_limited(7.0, 0)
    await pacer.rate_limited(None, 2)
    assert time.slept == [7.0, 4.0]
    await pacer.wait()
    assert time.slept[-1] == 1.0  # and the next call still keeps its interval


def test_the_filters_become_recalls_query() -> None:
    query = RecordingFilter(
        status_code="done",
        created_at_after=datetime(2026, 11, 1, tzinfo=UTC),
        metadata={"team": "a", "env": "prod"},
    ).params()
    assert query == {
        "status_code": "done",
        "created_at_after": "2026-11-01T00:00:00Z",
        "metadata__env": "prod",
        "metadata__team": "a",
    }


@pytest.mark.parametrize(
    "options",
    [
        {"status_code": "finished"},
        {"metadata": {"": "x"}},
        {"metadata": {"team": "x" * 501}},
    ],
)
def test_filters_recall_would_refuse_are_refused_here(options: dict[str, object]) -> None:
    with pytest.raises(RecallInvalidArgument):
        RecordingFilter(**options)  # type: ignore[arg-type]


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(RecallInvalidArgument, match="timezone-aware"):
        RecordingFilter(created_at_after=datetime(2026, 11, 1)).params()
