"""Every event ends in a decision: the supervisor around each event's handling.

- A :class:`~pipeline_common.retries.PoisonMessage` or a validation error: the event goes to the DLQ (no retry can
  fix it) and the partition moves on.
- Any other exception, foreseen or not (a full disk, a Recall reply of a shape never seen, a broker error in the
  middle of a step): the event is *parked* in the recording's state with the error and a backoff, and woken through
  the worker's retries topic like any other retry; the handling is repeated then (handlers tolerate an event twice).
  Events for a recording with parked events queue behind them, so a recording's events are never reordered.
- After ``max_internal_errors`` failures the parked events go to the DLQ with the last error, and the service's
  ``give_up`` ends the recording (``transcripts.failed`` with reason ``internal_error``, where nothing ended it yet).

Nothing is acked into nothing: the offset is committed only after the event was handled, parked or dead-lettered.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pipeline_common.logging import get_logger
from pipeline_common.retries import PoisonMessage
from pipeline_common.worker.backoff import Backoff
from pipeline_common.worker.limits import WorkerLimits
from pipeline_common.worker.locks import KeyedLocks
from pipeline_common.worker.message import Inbound
from pipeline_common.worker.table import PARKED_TARGET, SUPERVISION_KEY, RecordingTable

__all__ = ["MAX_PARKED", "PARKED_TARGET", "Supervision", "Supervisor"]

_log = get_logger("pipeline_common.worker")
#: Events one recording may have waiting; more means something is badly wrong with it: it is given up.
MAX_PARKED: Final = 50

Work = Callable[[], Awaitable[None]]
Redo = Callable[[Inbound], Awaitable[None]]


class Supervision(BaseModel):
    model_config = ConfigDict(extra="ignore")

    parked: list[dict[str, Any]] = Field(default_factory=list, description="Inbound.to_json() of each, in order")
    failures: int = Field(default=0, ge=0)
    sequence: int = Field(default=0, ge=0)
    due_at: AwareDatetime | None = None
    last_error: str | None = None
    first_failed_at: AwareDatetime | None = None


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _count_nothing() -> None:
    return None


@dataclass
class Supervisor:
    table: RecordingTable
    locks: KeyedLocks
    _: KW_ONLY
    limits: WorkerLimits
    backoff: Backoff
    dead_letter: Callable[[Inbound, str], Awaitable[None]]
    give_up: Callable[[str, str], Awaitable[None]]
    clock: Callable[[], datetime]
    rng: random.Random
    on_internal_error: Callable[[], None] = _count_nothing
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def supervision(self, key: str) -> Supervision | None:
        value = self.table.get(key)
        raw = value.get(SUPERVISION_KEY) if value else None
        return Supervision.model_validate(raw) if raw else None

    async def run(self, key: str, inbound: Inbound, work: Work) -> None:
        """Handle one event of ``key`` under its lock, and end it in a decision whatever happens. When not even the
        decision can be written (the Table refuses writes), the event is held, not acked: the handling is tried
        again after a backoff, keeping this recording's partition waiting (every recording on it would fail alike)."""
        async with self.locks.hold(key):
            held = 0
            while True:
                try:
                    await self._run_once(key, inbound, work)
                    return
                except Exception as error:
                    held += 1
                    self.on_internal_error()
                    delay = self.backoff.delay(held, self.rng)
                    _log.error(
                        "could not record an event's outcome; holding it and trying again",
                        key=key,
                        error=describe(error),
                        attempts=held,
                        retry_in_seconds=round(delay, 2),
                    )
                    await self.sleep(delay)

    async def _run_once(self, key: str, inbound: Inbound, work: Work) -> None:
        waiting = self.supervision(key)
        if waiting is not None and waiting.parked:
            # Behind the recording's parked events, never before them.
            await self._park(key, waiting, [inbound], error=None)
            return
        try:
            await work()
        except (PoisonMessage, ValidationError) as poison:
            await self._poison(key, inbound, str(poison))
        except Exception as error:  # the point: no exception loses the event
            await self._park(key, Supervision(), [inbound], error=error)

    async def _poison(self, key: str, inbound: Inbound, reason: str) -> None:
        try:
            await self.dead_letter(inbound, reason)
        except Exception as error:  # the DLQ unreachable: parked, dead-lettered on its wake-up
            await self._park(key, Supervision(), [inbound], error=error)

    async def resume(self, key: str, sequence: int, redo: Redo) -> None:
        """The parked events' wake-up: handle them again, in order (``redo`` runs under the lock already held)."""
        async with self.locks.hold(key):
            supervision = self.supervision(key)
            if supervision is None or supervision.sequence != sequence or not supervision.parked:
                return
            if supervision.due_at is not None and supervision.due_at > self.clock():
                return
            remaining = list(supervision.parked)
            while remaining:
                inbound = Inbound.from_json(remaining[0])
                try:
                    await redo(inbound)
                except (PoisonMessage, ValidationError) as poison:
                    await self.dead_letter(inbound, str(poison))
                except Exception as error:  # parked again, with the failure counted
                    supervision.parked = remaining
                    await self._park(key, supervision, [], error=error)
                    return
                remaining.pop(0)
            self._write(key, None)
            _log.info("parked events handled", key=key, failures=supervision.failures)

    async def _park(
        self, key: str, supervision: Supervision, inbound: list[Inbound], *, error: Exception | None
    ) -> None:
        now = self.clock()
        parked = [*supervision.parked, *(event.to_json() for event in inbound)]
        update: dict[str, Any] = {"parked": parked}
        if error is not None:
            self.on_internal_error()
            failures = supervision.failures + 1
            delay = self.backoff.delay(failures, self.rng)
            update |= {
                "failures": failures,
                "sequence": supervision.sequence + 1,
                "due_at": now + timedelta(seconds=delay),
                "last_error": describe(error),
                "first_failed_at": supervision.first_failed_at or now,
            }
            _log.error(
                "unexpected error; event parked for a retry",
                key=key,
                error=describe(error),
                failures=failures,
                retry_in_seconds=round(delay, 2),
                exc_info=error,
            )
        parked_now = supervision.model_copy(update=update)
        if parked_now.failures >= self.limits.max_internal_errors or len(parked) > MAX_PARKED:
            await self._abandon(key, parked_now)
            return
        self._write(key, parked_now)

    async def _abandon(self, key: str, supervision: Supervision) -> None:
        reason = f"gave up after {supervision.failures} internal errors: {supervision.last_error}"
        try:
            for raw in supervision.parked:
                await self.dead_letter(Inbound.from_json(raw), reason)
            await self.give_up(key, reason)
        except Exception as error:  # kept parked; the next wake-up gives up again
            _log.error("could not give the recording up; retrying", key=key, error=describe(error))
            delay = self.backoff.delay(supervision.failures, self.rng)
            retry = supervision.model_copy(
                update={"sequence": supervision.sequence + 1, "due_at": self.clock() + timedelta(seconds=delay)}
            )
            self._write(key, retry)
            return
        _log.error("recording given up after internal errors", key=key, reason=reason)
        self._write(key, None)

    def _write(self, key: str, supervision: Supervision | None) -> None:
        value = self.table.get(key) or {}
        if supervision is None:
            value.pop(SUPERVISION_KEY, None)
            if not value:
                self.table.delete(key)
                return
        else:
            value[SUPERVISION_KEY] = supervision.model_dump(mode="json")
        self.table.put(key, value)
