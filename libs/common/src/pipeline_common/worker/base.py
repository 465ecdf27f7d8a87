"""What both workers do the same way around their own logic: take an event or a retry wake-up under the recording's
lock and the supervisor, send the due retries, sweep the Table, dead-letter. A service subclasses
:class:`SupervisedWorker` and says how to read its events, carry out a retry, look at one recording in the sweep and
give a recording up."""

from __future__ import annotations

import asyncio
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from datetime import datetime
from typing import Any, ClassVar, Generic, NotRequired, Protocol, Required, TypedDict, TypeVar, Unpack

from prometheus_client import Counter, Gauge

from pipeline_common.logging import get_logger
from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDispatcher, RetryDue
from pipeline_common.worker.backoff import RetrySchedule, now
from pipeline_common.worker.faults import FaultHook
from pipeline_common.worker.limits import WorkerLimits
from pipeline_common.worker.locks import KeyedLocks
from pipeline_common.worker.message import Inbound
from pipeline_common.worker.supervisor import Supervisor, Work, describe
from pipeline_common.worker.table import PARKED_TARGET, SUPERVISION_KEY, SWEEP_TARGET, RecordingTable

_log = get_logger("pipeline_common.worker")

#: An input event read: the recording it belongs to and the work it asks for; None when the worker ignores it.
Routed = tuple[str, Work] | None


class WorkerMetrics(Protocol):
    dlq: Counter
    internal_errors: Counter
    retry_backlog: Gauge


class WorkerSenders(Protocol):
    """The two outputs the core sends to; each worker's ``Senders`` has them beside its own."""

    @property
    def retry(self) -> Callable[[RetryDue], Awaitable[None]]: ...

    @property
    def dead_letter(self) -> Callable[[Inbound, str], Awaitable[None]]: ...


PolicyT = TypeVar("PolicyT", bound=RetrySchedule)
SendersT = TypeVar("SendersT", bound=WorkerSenders)
MetricsT = TypeVar("MetricsT", bound=WorkerMetrics)


class WorkerCore(TypedDict, Generic[PolicyT, SendersT]):
    """What either worker is built from besides its own collaborators (tests pass a clock, a seeded RNG, faults)."""

    table: Required[MutableMapping[str, Any]]
    policy: Required[PolicyT]
    senders: Required[SendersT]
    limits: NotRequired[WorkerLimits]
    clock: NotRequired[Callable[[], datetime]]
    rng: NotRequired[random.Random]
    faults: NotRequired[FaultHook | None]


class SupervisedWorker(ABC, Generic[PolicyT, SendersT, MetricsT]):
    #: The worker's own retries topic: a record read from it is one of its scheduled retries.
    retries_topic: ClassVar[str]

    def __init__(self, *, metrics: MetricsT, **core: Unpack[WorkerCore[PolicyT, SendersT]]) -> None:
        self.policy = policy = core["policy"]
        self.senders = senders = core["senders"]
        self.metrics = metrics
        self.table = RecordingTable(core["table"], self.pending_retries)
        self.limits = limits = core.get("limits") or WorkerLimits()
        self.clock = clock = core.get("clock", now)
        self.rng = rng = core.get("rng") or random.Random()  # noqa: S311 - jitter, not cryptography
        self.faults = core.get("faults") or FaultHook(limits.fault_probability)
        self.dispatcher = RetryDispatcher(senders.retry)
        self.locks = KeyedLocks()
        self.supervisor = Supervisor(
            self.table,
            self.locks,
            limits=limits,
            backoff=policy.backoff,
            dead_letter=self.to_dlq,
            give_up=self.give_up,
            clock=clock,
            rng=rng,
            on_internal_error=metrics.internal_errors.inc,
        )

    # --- what a service says ----------------------------------------------------------------------------------------

    @abstractmethod
    def pending_retries(self, key: str, value: Mapping[str, Any]) -> Iterable[PendingRetry]:
        """The retries a recording's stored value has scheduled (read from the raw value: the Table's due-index)."""

    @abstractmethod
    def route(self, inbound: Inbound) -> Routed:
        """Read an input event (raise PoisonMessage when it is not one); deterministic, no I/O."""

    @abstractmethod
    async def handle_retry(self, due: RetryDue) -> None:
        """Carry out one of the service's own scheduled retries (under the recording's lock)."""

    @abstractmethod
    def sweep_work(self, key: str, value: Mapping[str, Any], now: datetime) -> Work | None:
        """What the sweep has to do for this recording, or None. Deciding only reads: the timer asks to know whom to
        wake, and the recording's agent asks again and runs the work (under its lock; never with parked events)."""

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
        self.metrics.retry_backlog.set(backlog)
        return backlog

    async def sweep(self) -> None:
        """Start-up and periodic: rebuild the due-index, then look at every local recording once. The timer only
        reads: faust writes a Table key only inside stream iteration (to the changelog partition of the event in
        hand), so a recording with work to do is woken through the retries topic (keyed, co-partitioned) and its
        agent does the work (:meth:`sweep_work`). A wake-up sent twice finds nothing left the second time."""
        moment = self.clock()
        wake: list[str] = []
        for key, value in self.table.reindex():
            if self.locks.busy(key) or value.get(SUPERVISION_KEY):
                continue  # in hand right now, or parked events whose wake-up comes first: the next sweep looks again
            try:
                if self.sweep_work(key, value, moment) is not None:
                    wake.append(key)
            except Exception as error:  # one recording's trouble does not stop the sweep; looked at again
                self._sweep_failed(key, error)
        for start in range(0, len(wake), 100):  # acked sends, a hundred in flight (a retention's worth may be due)
            chunk = wake[start : start + 100]
            sent = await asyncio.gather(
                *(self.senders.retry(RetryDue(key, SWEEP_TARGET, 0)) for key in chunk), return_exceptions=True
            )
            for key, outcome in zip(chunk, sent, strict=True):
                if isinstance(outcome, Exception):  # looked at again by the next sweep
                    _log.error("sweep could not wake a recording", key=key, error=describe(outcome))

    async def _sweep_now(self, key: str) -> None:
        async with self.locks.hold(key):
            try:
                value = self.table.get(key)
                if value is None or value.get(SUPERVISION_KEY):
                    return  # gone, or parked events whose wake-up comes first
                work = self.sweep_work(key, value, self.clock())
                if work is not None:
                    await work()
            except Exception as error:  # looked at again by the next sweep
                self._sweep_failed(key, error)

    def _sweep_failed(self, key: str, error: Exception) -> None:
        self.metrics.internal_errors.inc()
        _log.error("sweep failed for a recording", key=key, error=describe(error))

    async def to_dlq(self, inbound: Inbound, reason: str) -> None:
        await self.senders.dead_letter(inbound, reason)
        self.metrics.dlq.inc()

    async def _redo(self, inbound: Inbound) -> None:
        """A parked event, handled again (the supervisor holds the recording's lock)."""
        if inbound.topic == self.retries_topic:
            await self.handle_retry(RetryDue.loads(inbound.value))
            return
        routed = self.route(inbound)
        if routed is not None:
            await routed[1]()
