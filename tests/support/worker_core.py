"""What the worker-core tests of both workers drive a worker with, in-process: a settable clock, record offsets,
senders that record what they were given, and the retry timer's round trip through the retries topic
(:class:`WorkerHarness`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar

from pipeline_common.contracts import TranscriptFailed
from pipeline_common.retries import RetryDue
from pipeline_common.worker import Inbound
from pipeline_common.worker.base import SupervisedWorker

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Offsets:
    def __init__(self) -> None:
        self.next = 0

    def inbound(self, topic: str, key: str, body: dict[str, Any] | bytes) -> Inbound:
        self.next += 1
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Inbound(topic=topic, partition=0, offset=self.next, key=key.encode(), value=value, headers=[])


@dataclass
class Outputs:
    """Every sender either worker has; ``failed_errors`` makes the next ``transcripts.failed`` sends raise."""

    failed: list[TranscriptFailed] = field(default_factory=list)
    retries: list[RetryDue] = field(default_factory=list)
    dead: list[tuple[Inbound, str]] = field(default_factory=list)
    transcript_events: list[tuple[str, bytes, list[tuple[str, bytes]]]] = field(default_factory=list)
    failed_errors: list[BaseException] = field(default_factory=list)

    async def send_failed(self, failed: TranscriptFailed) -> None:
        if self.failed_errors:
            raise self.failed_errors.pop(0)
        self.failed.append(failed)

    async def send_retry(self, due: RetryDue) -> None:
        self.retries.append(due)

    async def send_dead_letter(self, inbound: Inbound, reason: str) -> None:
        self.dead.append((inbound, reason))

    async def send_transcript_event(self, key: str, body: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.transcript_events.append((key, body, headers))


class StreamOnlyTable(dict[str, Any]):
    """A dict with faust's rule for a Table: a key is written only inside stream iteration (faust sends each write to
    the changelog partition of the event in hand), never from a timer. ``in_timer`` is set around the timer's work; a
    write then raises what faust raises."""

    in_timer = False

    def _check(self) -> None:
        if self.in_timer:
            raise TypeError("Cannot modify table key from outside of stream iteration")

    def __setitem__(self, key: str, value: Any) -> None:
        self._check()
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._check()
        super().__delitem__(key)


WorkerT = TypeVar("WorkerT", bound=SupervisedWorker[Any, Any, Any])


class WorkerHarness(Generic[WorkerT]):
    """One worker driven in-process over a dict for its Table, a settable clock and recording senders. A subclass
    adds its fakes, then sets ``self.worker = self.restart()``; ``restart`` builds a fresh worker over the same Table
    (what a restarted process rebuilds from the changelog)."""

    worker: WorkerT

    def __init__(self, table: dict[str, Any] | None = None) -> None:
        self.table: dict[str, Any] = StreamOnlyTable() if table is None else table
        self.out = Outputs()
        self.clock = Clock()
        self.offsets = Offsets()

    async def sweep(self) -> int:
        """The sweep as the timer runs it (no Table write allowed), then every wake-up it sent handed to the retries
        agent (inside stream iteration); how many."""
        sent = len(self.out.retries)
        timer_only = isinstance(self.table, StreamOnlyTable)
        if timer_only:
            self.table.in_timer = True
        try:
            await self.worker.sweep()
        finally:
            if timer_only:
                self.table.in_timer = False
        return await self._hand_over(self.out.retries[sent:])

    async def sweep_after(self, seconds: float) -> int:
        """Let time pass, then run the sweep (deadlines, retention)."""
        self.clock.advance(seconds)
        return await self.sweep()

    async def wake_up(self, *, after: float = 3600) -> int:
        """Let time pass, run the retry timer, and hand every wake-up it sends to the retries agent; how many."""
        self.clock.advance(after)
        sent = len(self.out.retries)
        await self.worker.dispatch_due_retries()
        return await self._hand_over(self.out.retries[sent:])

    async def _hand_over(self, woken: list[RetryDue]) -> int:
        for due in woken:
            await self.worker.on_retry(self.offsets.inbound(self.worker.retries_topic, due.recording_id, due.dumps()))
        return len(woken)
