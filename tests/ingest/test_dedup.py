from __future__ import annotations

import pytest

from ingest.dedup import RecentDeliveries

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_remembers_within_the_window_and_forgets_after() -> None:
    clock = Clock()
    recent = RecentDeliveries(window_seconds=60, max_entries=10, clock=clock)
    assert not recent.seen("a")
    recent.remember("a")
    clock.now += 59
    assert recent.seen("a")
    clock.now += 2
    assert not recent.seen("a")
    assert len(recent) == 0


def test_is_bounded_and_evicts_the_oldest() -> None:
    recent = RecentDeliveries(window_seconds=60, max_entries=3, clock=Clock())
    for webhook_id in "abcd":
        recent.remember(webhook_id)
    assert len(recent) == 3
    assert not recent.seen("a")
    assert all(recent.seen(webhook_id) for webhook_id in "bcd")


def test_zero_size_disables_it() -> None:
    recent = RecentDeliveries(window_seconds=60, max_entries=0, clock=Clock())
    recent.remember("a")
    assert not recent.seen("a")
