"""The shared worker core on its own: locks, the due-index, and the supervisor's edge cases."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDue
from pipeline_common.worker import Backoff, Inbound, KeyedLocks, RecordingTable, Supervisor, WorkerLimits
from pipeline_common.worker.table import PARKED_TARGET

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def scheduled(key: str, value: Any) -> list[PendingRetry]:
    retry = value.get("retry")
    return [PendingRetry(RetryDue(key, "1", retry["sequence"]), NOW)] if retry else []


def message(offset: int) -> Inbound:
    return Inbound(topic="t", partition=0, offset=offset, key=b"k", value=b"{}", headers=[("h", b"v")])


class Harness:
    def __init__(self) -> None:
        self.backing: dict[str, Any] = {}
        self.table = RecordingTable(self.backing, scheduled)
        self.dead: list[tuple[Inbound, str]] = []
        self.given_up: list[tuple[str, str]] = []
        self.dlq_down = False
        self.supervisor = Supervisor(
            self.table,
            KeyedLocks(),
            limits=WorkerLimits(max_internal_errors=2),
            backoff=Backoff(1, 10),
            dead_letter=self.dead_letter,
            give_up=self.give_up,
            clock=lambda: NOW,
            rng=random.Random(1),
        )

    async def dead_letter(self, inbound: Inbound, reason: str) -> None:
        if self.dlq_down:
            raise ConnectionError("broker unreachable")
        self.dead.append((inbound, reason))

    async def give_up(self, key: str, reason: str) -> None:
        self.given_up.append((key, reason))


async def test_locks_are_forgotten_with_their_last_user() -> None:
    locks = KeyedLocks()
    async with locks.hold("a"):
        assert locks.busy("a") and not locks.busy("b")
    assert not locks.busy("a") and len(locks) == 0


def test_the_due_index_follows_writes_and_deletes_and_is_rebuilt_from_the_table() -> None:
    h = Harness()
    h.table.put("a", {"retry": {"sequence": 1}})
    h.table.put("b", {})
    assert [p.due.recording_id for p in h.table.pending()] == ["a"]
    h.table.delete("a")
    assert list(h.table.pending()) == [] and "a" not in h.backing
    h.backing["c"] = {"retry": {"sequence": 2}}  # written behind the door (recovered from the changelog)
    h.table.reindex()
    assert [p.due.sequence for p in h.table.pending()] == [2]


async def test_a_poison_message_with_the_dlq_unreachable_is_parked_not_lost() -> None:
    h = Harness()
    h.dlq_down = True

    async def poison() -> None:
        raise PoisonMessage("not a webhook")

    await h.supervisor.run("k", message(1), poison)
    supervision = h.supervisor.supervision("k")
    assert supervision is not None and supervision.parked[0]["offset"] == 1
    (pending,) = h.table.pending()
    assert pending.due.target == PARKED_TARGET
    h.dlq_down = False
    h.supervisor.clock = lambda: NOW + timedelta(hours=1)

    async def redo(inbound: Inbound) -> None:
        raise PoisonMessage("not a webhook")

    await h.supervisor.resume("k", supervision.sequence, redo)
    assert [(d.offset, r) for d, r in h.dead] == [(1, "not a webhook")]
    assert "k" not in h.backing  # nothing but the parked event was there


async def test_a_stale_or_early_wake_up_does_nothing() -> None:
    h = Harness()

    async def boom() -> None:
        raise ValueError("boom")

    await h.supervisor.run("k", message(1), boom)
    supervision = h.supervisor.supervision("k")
    assert supervision is not None and supervision.due_at is not None and supervision.due_at > NOW
    called: list[Inbound] = []

    async def redo(inbound: Inbound) -> None:
        called.append(inbound)

    await h.supervisor.resume("k", supervision.sequence, redo)  # not due yet
    await h.supervisor.resume("k", supervision.sequence + 5, redo)  # not the current schedule
    assert called == []


async def test_abandoning_keeps_the_events_parked_while_the_dlq_is_unreachable() -> None:
    h = Harness()

    async def boom() -> None:
        raise ValueError("boom")

    await h.supervisor.run("k", message(1), boom)
    h.dlq_down = True
    h.supervisor.clock = lambda: NOW + timedelta(hours=1)
    first = h.supervisor.supervision("k")
    assert first is not None

    async def redo(inbound: Inbound) -> None:
        raise ValueError("boom again")

    await h.supervisor.resume("k", first.sequence, redo)  # second failure: the bound; the DLQ is down
    kept = h.supervisor.supervision("k")
    assert kept is not None and kept.parked and h.given_up == []
    h.dlq_down = False
    h.supervisor.clock = lambda: NOW + timedelta(hours=2)
    await h.supervisor.resume("k", kept.sequence, redo)
    assert [d.offset for d, _ in h.dead] == [1] and h.given_up and h.given_up[0][0] == "k"
    assert h.supervisor.supervision("k") is None


class Unwritable(dict[str, Any]):
    """A Table whose writes fail for a while (faust raised PartitionsMismatch while the changelog's metadata was not
    yet known to a freshly started worker)."""

    failures = 2

    def __setitem__(self, key: str, value: Any) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("PartitionsMismatch: the changelog topic has 0 partitions")
        super().__setitem__(key, value)


async def test_an_event_whose_outcome_cannot_be_written_is_held_and_tried_again() -> None:
    # Found by tests/fetcher/test_crash.py: the park itself failed (the Table unwritable), the exception left the
    # agent, and faust acked the event into nothing.
    h = Harness()
    h.backing = Unwritable()
    h.table = RecordingTable(h.backing, scheduled)
    h.supervisor.table = h.table
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    h.supervisor.sleep = sleep

    async def work() -> None:
        h.table.put("k", {"done": True})

    await h.supervisor.run("k", message(1), work)
    assert h.backing["k"] == {"done": True}
    assert len(slept) == 1  # the work failed, its park failed: held, then the work again (and the park) succeeded
