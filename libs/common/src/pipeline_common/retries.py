"""Retry wake-ups for the faust consumers: a retry schedule kept in the Table, woken through a retries topic.

A recording that must wait (a ``Retry-After``, a backoff) must not hold up every other recording on its partition,
so nothing sleeps in an agent: the wait is written into the recording's state, a timer scans the Table for retries
that are due, and sends a :class:`RetryDue` to the service's retries topic (co-partitioned with its input, keyed by
recording id), whose agent carries the retry out. The ``sequence`` makes a stale or repeated wake-up recognisable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

REDISPATCH_AFTER_SECONDS: Final = 60.0


class ScheduledRetry(BaseModel):
    """A retry as a worker keeps it in its Table (the fetcher's per transcript, the transcriber's per recording)."""

    model_config = ConfigDict(extra="ignore")

    sequence: int = Field(ge=1, description="increases with every schedule, so a stale wake-up is recognisable")
    due_at: AwareDatetime
    reason: str


class PoisonMessage(Exception):
    """A message no retry can fix: it goes to the DLQ and the partition moves on."""


@dataclass(frozen=True, slots=True)
class RetryDue:
    """Wake up ``target`` (the transcriber's attempt number, the fetcher's transcript id) of ``recording_id``."""

    recording_id: str
    target: str
    sequence: int

    def dumps(self) -> bytes:
        return json.dumps(
            {"recording_id": self.recording_id, "target": self.target, "sequence": self.sequence}
        ).encode()

    @classmethod
    def loads(cls, raw: bytes | None) -> RetryDue:
        try:
            data = json.loads(raw or b"")
            return cls(str(data["recording_id"]), str(data["target"]), int(data["sequence"]))
        except (ValueError, KeyError, TypeError) as error:
            raise PoisonMessage(f"retry message is not valid: {type(error).__name__}") from None


@dataclass(frozen=True, slots=True)
class PendingRetry:
    due: RetryDue
    due_at: datetime


class RetryDispatcher:
    """Sends one wake-up per due retry; sends it again only if no outcome replaced the schedule within
    ``redispatch_after`` seconds (the process that took it may have crashed mid-call)."""

    def __init__(
        self,
        send: Callable[[RetryDue], Awaitable[None]],
        *,
        redispatch_after: float = REDISPATCH_AFTER_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._redispatch_after = redispatch_after
        self._clock = clock
        # Keyed by the schedule (the wake-up and its due time): the same wake-up scheduled anew (a recording parked,
        # resumed, and parked again starts at the same sequence) is a new schedule and is sent at once.
        self._sent: dict[PendingRetry, float] = {}

    async def dispatch(self, pending: Iterable[PendingRetry], now: datetime) -> int:
        """Wake every due retry in ``pending``; return how many retries are scheduled (due or not)."""
        clock = self._clock()
        backlog = 0
        for retry in pending:
            backlog += 1
            if retry.due_at > now:
                continue
            if clock - self._sent.get(retry, -self._redispatch_after) < self._redispatch_after:
                continue
            self._sent[retry] = clock
            await self._send(retry.due)
        for schedule, sent_at in list(self._sent.items()):
            if clock - sent_at > 10 * self._redispatch_after:
                del self._sent[schedule]
        return backlog
