"""The analysis budget (fetcher/budget.py): how much transcript is validated and rendered at once."""

from __future__ import annotations

import asyncio

import pytest

from fetcher.budget import ByteBudget
from fetcher.settings import FetcherSettings
from pipeline_common.settings import ConfigError, load_settings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.unit

MB = 1024 * 1024


class Holder:
    """A task that holds ``size`` of the budget until released, and says when it got in."""

    def __init__(self, budget: ByteBudget, size: int) -> None:
        self.inside = asyncio.Event()
        self.leave = asyncio.Event()
        self.task = asyncio.create_task(self._run(budget, size))

    async def _run(self, budget: ByteBudget, size: int) -> None:
        async with budget.hold(size):
            self.inside.set()
            await self.leave.wait()

    async def done(self) -> None:
        self.leave.set()
        await self.task


async def settled() -> None:
    """Run every task that is ready, a few rounds (no time passes: the budget's grants resolve futures, so whatever
    they let in is ready at once; a task still outside after this is waiting on the budget)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_small_pieces_share_the_budget() -> None:
    budget = ByteBudget(10 * MB)
    holders = [Holder(budget, 2 * MB) for _ in range(5)]
    await settled()
    assert all(holder.inside.is_set() for holder in holders)
    assert budget.in_use == 10 * MB
    for holder in holders:
        await holder.done()
    assert budget.in_use == 0


async def test_a_piece_that_does_not_fit_waits_for_room() -> None:
    budget = ByteBudget(10 * MB)
    first = Holder(budget, 6 * MB)
    second = Holder(budget, 6 * MB)
    await settled()
    assert first.inside.is_set() and not second.inside.is_set()
    await first.done()
    await wait_for(second.inside.is_set, timeout=5, message="the second piece got in")
    await second.done()
    assert budget.in_use == 0


async def test_a_piece_larger_than_the_budget_runs_alone_rather_than_never() -> None:
    budget = ByteBudget(10 * MB)
    small = Holder(budget, 1 * MB)
    huge = Holder(budget, 100 * MB)
    await settled()
    assert small.inside.is_set() and not huge.inside.is_set()
    await small.done()
    await wait_for(huge.inside.is_set, timeout=5, message="the huge piece got in")
    assert budget.in_use == 10 * MB
    await huge.done()


async def test_pieces_are_granted_in_arrival_order() -> None:
    budget = ByteBudget(10 * MB)
    first = Holder(budget, 8 * MB)
    large = Holder(budget, 8 * MB)  # waits for the first
    await settled()
    small = Holder(budget, 1 * MB)  # would fit now, but the large one came first
    await settled()
    assert not large.inside.is_set()
    assert not small.inside.is_set()
    await first.done()
    await wait_for(lambda: large.inside.is_set() and small.inside.is_set(), timeout=5, message="both got in")
    await large.done()
    await small.done()


async def test_a_cancelled_waiter_leaves_the_budget_whole_and_lets_the_next_one_in() -> None:
    budget = ByteBudget(10 * MB)
    first = Holder(budget, 8 * MB)
    cancelled = Holder(budget, 8 * MB)
    behind = Holder(budget, 2 * MB)  # fits beside the first, held back only by the cancelled one's turn
    await settled()
    assert not behind.inside.is_set()
    cancelled.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled.task
    await wait_for(behind.inside.is_set, timeout=5, message="the next one got in")
    await first.done()
    await behind.done()
    assert budget.in_use == 0


async def test_a_waiter_cancelled_as_it_is_granted_gives_its_share_back() -> None:
    budget = ByteBudget(10 * MB)
    first = budget.hold(8 * MB)
    await first.__aenter__()
    granted = Holder(budget, 8 * MB)
    await settled()
    await first.__aexit__(None, None, None)  # no suspension: grants the waiter before its task can run
    assert budget.in_use == 8 * MB
    granted.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await granted.task
    assert not granted.inside.is_set()
    assert budget.in_use == 0


async def test_a_release_skips_a_waiter_cancelled_before_its_cleanup_ran() -> None:
    budget = ByteBudget(10 * MB)
    first = budget.hold(8 * MB)
    await first.__aenter__()
    cancelled = Holder(budget, 8 * MB)
    behind = Holder(budget, 2 * MB)
    await settled()
    cancelled.task.cancel()  # its turn is cancelled at once; its own cleanup runs only when the task does
    await first.__aexit__(None, None, None)
    with pytest.raises(asyncio.CancelledError):
        await cancelled.task
    await asyncio.wait_for(behind.inside.wait(), timeout=5)
    await behind.done()
    assert budget.in_use == 0


@pytest.mark.parametrize("size", [0, -5])
async def test_an_empty_or_nonsensical_size_still_takes_a_byte(size: int) -> None:
    budget = ByteBudget(10)
    async with budget.hold(size):
        assert budget.in_use == 1
    assert budget.in_use == 0


def test_a_budget_needs_a_limit() -> None:
    with pytest.raises(ValueError, match="at least 1 byte"):
        ByteBudget(0)


@pytest.mark.parametrize(
    ("value", "problem"),
    [("1000", "greater than or equal to 1048576"), ("lots", "valid integer"), (str(2**40), "less than or equal to")],
)
def test_a_bad_budget_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str, problem: str) -> None:
    monkeypatch.setenv("RECALL_API_KEY", "k" * 20)
    monkeypatch.setenv("FETCHER_ANALYSIS_BUDGET_BYTES", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(FetcherSettings)
    [line] = caught.value.problems
    assert line.startswith("FETCHER_ANALYSIS_BUDGET_BYTES: ") and problem in line
