from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDispatcher, RetryDue

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_wake_up_round_trips() -> None:
    due = RetryDue("rec-1", "3", 7)
    assert RetryDue.loads(due.dumps()) == due


@pytest.mark.parametrize(
    "raw", [None, b"", b"{", b"[]", b'{"recording_id": "r"}', b'{"recording_id": "r", "target": "t", "sequence": "x"}']
)
def test_a_malformed_wake_up_is_poison(raw: bytes | None) -> None:
    with pytest.raises(PoisonMessage, match="retry message is not valid"):
        RetryDue.loads(raw)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_due_retries_are_sent_once_until_the_redispatch_interval() -> None:
    sent: list[RetryDue] = []

    async def send(due: RetryDue) -> None:
        sent.append(due)

    clock = Clock()
    dispatcher = RetryDispatcher(send, redispatch_after=60, clock=clock)
    due_now = PendingRetry(RetryDue("a", "1", 1), NOW - timedelta(seconds=1))
    later = PendingRetry(RetryDue("b", "1", 1), NOW + timedelta(seconds=30))

    assert await dispatcher.dispatch([due_now, later], NOW) == 2  # both count towards the backlog
    assert sent == [due_now.due]
    clock.now += 30
    assert await dispatcher.dispatch([due_now, later], NOW) == 2
    assert sent == [due_now.due]  # not again while the first may still be in progress
    clock.now += 31
    await dispatcher.dispatch([due_now, later], NOW + timedelta(seconds=31))
    assert sent == [due_now.due, due_now.due, later.due]  # no outcome for a minute: sent again; the other is due
    rescheduled = PendingRetry(RetryDue("a", "1", 2), NOW)
    await dispatcher.dispatch([rescheduled], NOW + timedelta(seconds=31))
    assert sent[-1] == rescheduled.due  # a new sequence is a new wake-up


async def test_the_same_wake_up_scheduled_anew_is_sent_at_once() -> None:
    """A recording parked, resumed and parked again starts its supervision afresh: the second wake-up has the same
    target and sequence as the first but a new due time. It is a new schedule, not a redispatch of the old one, so it
    must not wait out ``redispatch_after`` (the short chaos run lost a recording to that wait)."""
    sent: list[RetryDue] = []

    async def send(due: RetryDue) -> None:
        sent.append(due)

    clock = Clock()
    dispatcher = RetryDispatcher(send, redispatch_after=60, clock=clock)
    first = PendingRetry(RetryDue("a", "@parked", 1), NOW)
    await dispatcher.dispatch([first], NOW)
    clock.now += 2
    again = PendingRetry(RetryDue("a", "@parked", 1), NOW + timedelta(seconds=2))
    await dispatcher.dispatch([again], NOW + timedelta(seconds=2))
    assert sent == [first.due, again.due]
