"""What both workers do the same way around their own logic: take an event or a retry wake-up under the recording's
lock and the supervisor, send the due retries, sweep the Table, dead-letter. A service subclasses
:class:`SupervisedWorker` and says how to read its events, carry out a retry, look at one recording in the sweep and
give a recording up."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from datetime import datetime
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from pipeline_common.logging import get_logger
from pipeline_common.retries import PoisonMessage, RetryDispatcher, RetryDue
from pipeline_common.worker.backoff import Backoff
from pipeline_common.worker.faults import FaultHook
from pipeline_common.worker.limits import WorkerLimits
from pipeline_common.worker.locks import KeyedLocks
from pipeline_common.worker.message import Inbound
from pipeline_common.worker.supervisor import Supervisor, Work, describe
from pipeline_common.worker.table import PARKED_TARGET, SUPERVISION_KEY, SWEEP_TARGET, PendingOf, RecordingTable

_log = get_logger("pipeline_common.worker")

#: An input event read: the recording it belongs to and the work it asks for; None when the worker ignores it.
Routed = tuple[str, Work] | None


class WorkerMetrics(Protocol):
    dlq: Counter
    internal_errors: Counter
    retry_backlog: Gauge


class SupervisedWorker(ABC):
    def __init__(
        self,
        *,
        table: MutableMapping[str, Any],
        pending_of: PendingOf,
        retries_topic: str,
        send_retry: Callable[[RetryDue], Awaitable[None]],
        send_dead_letter: Callable[[Inbound, str], Awaitable[None]],
        metrics: WorkerMetrics,
        limits: WorkerLimits,
        backoff: Backoff,
        clock: Callable[[], datetime],
        rng: random.Random,
        faults: FaultHook | None = None,
    ) -> None:
        self.table = RecordingTable(table, pending_of)
        self.retries_topic = retries_topic
        self.limits = limits
        self.clock = clock
        self.rng = rng
        self.faults = faults or FaultHook(limits.fault_probability)
        self._send_dead_letter = send_dead_letter
        self._send_retry = send_retry
        self._metrics = metrics
        self.dispatcher = RetryDispatcher(send_retry)
        self.locks = KeyedLocks()
        self.supervisor = Supervisor(
            self.table,
            self.locks,
            limits=limits,
            backoff=backoff,
            dead_letter=self.to_dlq,
            give_up=self.give_up,
            clock=clock,
            rng=rng,
            on_internal_error=metrics.internal_errors.inc,
        )

    # --- what a service says ----------------------------------------------------------------------------------------

    @abstractmethod
    def route(self, inbound: Inbound) -> Routed:
        """Read an input event (raise PoisonMessage when it is not one); deterministic, no I/O."""

    @abstractmethod
    async def handle_retry(self, due: RetryDue) -> None:
        """Carry out one of the service's own scheduled retries (under the recording's lock)."""

    @abstractmethod
    def sweep_due(self, key: str, value: Mapping[str, Any], now: datetime) -> bool:
        """Whether the sweep has something to do for this recording (read only: the timer may not write)."""

    @abstractmethod
    async def sweep_one(self, key: str) -> None:
        """Do the sweep's work for one recording (in its agent, under its lock; never one with parked events)."""

    @abstractmethod
    async def give_up(self, key: str, reason: str) -> None:
        """End a recording the supervisor gave up on (a terminal event, unless it already ended)."""

    # --- the same for every worker ------------------------------------------------------------------------------------

    async def on_event(self, inbound: Inbound) -> None:
        """An input event: read it, then handle it under the recording's lock and the supervisor."""
        try:
            routed = self.route(inbound)
        except PoisonMessage as poison:
            await self.to_dlq(inbound, str(poison))
            return
        except Exception as error:  # reading is deterministic: no retry would help
            await self.to_dlq(inbound, f"internal error reading the event: {describe(error)}")
            return
        if routed is not None:
            key, work = routed
            await self.supervisor.run(key, inbound, work)

    async def on_retry(self, inbound: Inbound) -> None:
        """A wake-up from the retries topic: the supervisor's parked events, or one of the service's retries."""
        try:
            due = RetryDue.loads(inbound.value)
        except PoisonMessage as poison:
            await self.to_dlq(inbound, str(poison))
            return
        if due.target == PARKED_TARGET:
            await self.supervisor.resume(due.recording_id, due.sequence, self._redo)
            return
        if due.target == SWEEP_TARGET:
            await self._sweep_now(due.recording_id)
            return
        await self.supervisor.run(due.recording_id, inbound, lambda: self.handle_retry(due))

    async def dispatch_due_retries(self) -> int:
        """The retry timer: wake, through the retries topic, every retry that is due (read from the due-index)."""
        backlog = await self.dispatcher.dispatch(self.table.pending(), self.clock())
        self._metrics.retry_backlog.set(backlog)
        return backlog

    async def sweep(self) -> None:
        """Start-up and periodic: rebuild the due-index, then look at every local recording once. The timer only
        reads: faust writes a Table key only inside stream iteration (to the changelog partition of the event in
        hand), so a recording with work to do is woken through the retries topic (keyed, co-partitioned) and its
        agent does the work (:meth:`sweep_one`). A wake-up sent twice finds nothing left the second time."""
        self.table.reindex()
        moment = self.clock()
        wake: list[str] = []
        for key, value in self.table.items():
            if self.locks.busy(key) or value.get(SUPERVISION_KEY):
                continue  # in hand right now, or parked events whose wake-up comes first: the next sweep looks again
            try:
                if self.sweep_due(key, value, moment):
                    wake.append(key)
            except Exception as error:  # one recording's trouble does not stop the sweep; looked at again
                self._metrics.internal_errors.inc()
                _log.error("sweep failed for a recording", key=key, error=describe(error))
        for start in range(0, len(wake), 100):  # acked sends, a hundred in flight (a retention's worth may be due)
            chunk = wake[start : start + 100]
            sent = await asyncio.gather(
                *(self._send_retry(RetryDue(key, SWEEP_TARGET, 0)) for key in chunk), return_exceptions=True
            )
            for key, outcome in zip(chunk, sent, strict=True):
                if isinstance(outcome, Exception):  # looked at again by the next sweep
                    _log.error("sweep could not wake a recording", key=key, error=describe(outcome))

    async def _sweep_now(self, key: str) -> None:
        async with self.locks.hold(key):
            try:
                if self.supervisor.supervision(key) is None:  # parked events: their wake-up comes first
                    await self.sweep_one(key)
            except Exception as error:  # looked at again by the next sweep
                self._metrics.internal_errors.inc()
                _log.error("sweep failed for a recording", key=key, error=describe(error))

    async def to_dlq(self, inbound: Inbound, reason: str) -> None:
        await self._send_dead_letter(inbound, reason)
        self._metrics.dlq.inc()

    async def _redo(self, inbound: Inbound) -> None:
        """A parked event, handled again (the supervisor holds the recording's lock)."""
        if inbound.topic == self.retries_topic:
            await self.handle_retry(RetryDue.loads(inbound.value))
            return
        routed = self.route(inbound)
        if routed is not None:
            await routed[1]()
