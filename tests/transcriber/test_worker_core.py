"""The transcriber's per-event logic driven in-process: a dict for the Table, a fake Recall, recording senders.

Each test here pins one of the worker-core defects (issue 12): it failed on the code before the core was built.
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import pytest

from pipeline_common.contracts import FailureReason
from pipeline_common.recall.errors import RecallServerError
from pipeline_common.recall.models import Diarization
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIPT_EVENTS
from pipeline_common.worker import Inbound, WorkerLimits
from tests.support.worker_core import StreamOnlyTable, WorkerHarness
from tests.transcriber.fakes import FakeRecall, artifact, webhook
from transcriber.fallback import Policy
from transcriber.state import Status
from transcriber.worker import Senders, Transcriber

pytestmark = pytest.mark.unit

REC = "rec-core-1"
LIMITS = WorkerLimits(
    max_internal_errors=3, deadline_seconds=600, sweep_seconds=60, retention_seconds=3600, give_up_seconds=7200
)
POLICY = Policy(
    chain=(ProviderConfig.of("recallai_async"), ProviderConfig.of("deepgram_async")),
    diarization=Diarization(use_separate_streams_when_available=True),
    retry_same_provider_on=frozenset(),
    max_attempts=10,
    retry_base_seconds=1.0,
    retry_max_seconds=60.0,
    operator_retry_seconds=60.0,
    operator_retry_max_seconds=900.0,
    idempotency_prefix="test",
)


class Harness(WorkerHarness[Transcriber]):
    def __init__(self, table: dict[str, Any] | None = None) -> None:
        super().__init__(table)
        self.recall = FakeRecall()
        self.worker = self.restart()

    def restart(self) -> Transcriber:
        """A fresh worker over the same Table: what a restarted process rebuilds from the changelog."""
        self.worker = Transcriber(
            table=self.table,
            recall=self.recall,
            policy=POLICY,
            senders=Senders(
                failed=self.out.send_failed,
                retry=self.out.send_retry,
                dead_letter=self.out.send_dead_letter,
                transcript_event=self.out.send_transcript_event,
            ),
            limits=LIMITS,
            clock=self.clock,
            rng=random.Random(7),
        )
        return self.worker

    def event(self, name: str, **options: Any) -> Inbound:
        topic = RECORDING_EVENTS.name if name.startswith("recording.") else TRANSCRIPT_EVENTS.name
        return self.offsets.inbound(topic, REC, webhook(name, REC, **options))


async def let_the_other_task_run() -> None:
    """Cooperative yields (not a timed sleep): a task that needs no I/O runs until it blocks or ends."""
    for _ in range(20):
        await asyncio.sleep(0)


# --- 1. an unforeseen exception never loses the event ---------------------------------------------------------------


async def test_an_unforeseen_exception_parks_the_event_and_its_wake_up_finishes_it() -> None:
    h = Harness()
    h.recall.create_errors = [RecursionError("maximum recursion depth exceeded")]
    await h.worker.on_event(h.event("recording.done"))
    parked = h.table[REC]["supervision"]
    assert parked["failures"] == 1 and len(parked["parked"]) == 1
    assert "RecursionError" in parked["last_error"]
    assert await h.wake_up() == 1
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.TRANSCRIBING
    assert state.current is not None and state.current.transcript_id == "tr-test-rec-core-1-attempt-1"
    assert "supervision" not in h.table[REC]
    assert [c["key"] for c in h.recall.creates] == ["test-rec-core-1-attempt-1"] * 2


async def test_unforeseen_exceptions_end_in_a_dead_letter_and_an_internal_error_failure() -> None:
    h = Harness()
    h.recall.always_raise = OSError(28, "No space left on device")
    done = h.event("recording.done")
    await h.worker.on_event(done)
    while await h.wake_up():
        pass
    assert len(h.recall.creates) == LIMITS.max_internal_errors
    ((dead, reason),) = h.out.dead
    assert dead.value == done.value and dead.offset == done.offset
    assert "No space left on device" in reason
    (failed,) = h.out.failed
    assert failed.reason is FailureReason.INTERNAL_ERROR
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.FAILED


async def test_a_later_event_waits_behind_a_parked_one() -> None:
    h = Harness()
    h.recall.create_errors = [KeyError("shape never seen")]
    await h.worker.on_event(h.event("recording.done"))
    tid = "tr-test-rec-core-1-attempt-1"
    await h.worker.on_event(h.event("transcript.done", transcript_id=tid, pipeline="test", pipeline_attempt="1"))
    assert len(h.table[REC]["supervision"]["parked"]) == 2  # not handled before the recording.done it follows
    await h.wake_up()
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.DONE


# --- 2. one recording, one handler at a time --------------------------------------------------------------------------


async def test_a_recording_deleted_while_its_create_is_in_flight_stays_failed() -> None:
    h = Harness()
    h.recall.gate = asyncio.Event()
    creating = asyncio.create_task(h.worker.on_event(h.event("recording.done")))
    await h.recall.entered.wait()
    deleting = asyncio.create_task(h.worker.on_event(h.event("recording.deleted")))
    await let_the_other_task_run()
    h.recall.gate.set()
    await asyncio.gather(creating, deleting)
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.FAILED
    assert state.failure_reason is FailureReason.RECORDING_DELETED
    assert [f.reason for f in h.out.failed] == [FailureReason.RECORDING_DELETED]


# --- 3. a terminal event is emitted, then recorded as emitted --------------------------------------------------------


class Killed(BaseException):
    """The process dies (SIGKILL): nothing after this point runs, no handler catches it."""


async def test_a_failure_lost_in_a_crash_is_emitted_when_the_event_is_redelivered() -> None:
    h = Harness()
    h.out.failed_errors = [Killed()]
    deleted = h.event("recording.deleted")
    with pytest.raises(Killed):
        await h.worker.on_event(deleted)
    assert h.out.failed == []
    h.restart()
    await h.worker.on_event(deleted)  # never committed, so delivered again
    assert [f.reason for f in h.out.failed] == [FailureReason.RECORDING_DELETED]
    await h.worker.on_event(deleted)  # recorded as emitted now: not again
    assert len(h.out.failed) == 1


# --- 4. deadlines: the outcome Recall has is carried out ------------------------------------------------------------


async def test_a_transcript_whose_webhook_never_came_is_reconciled_at_the_deadline() -> None:
    h = Harness()
    await h.worker.on_event(h.event("recording.done"))
    tid = "tr-test-rec-core-1-attempt-1"
    h.clock.advance(LIMITS.deadline_seconds - 1)
    await h.sweep()
    assert h.recall.retrieves == [] and h.out.transcript_events == []
    h.clock.advance(2)
    h.recall.transcripts[tid] = artifact(tid, REC, {"pipeline": "test", "pipeline_attempt": "1"}, code="done")
    await h.sweep()
    ((key, body, headers),) = h.out.transcript_events
    assert key == REC and json.loads(body)["event"] == "transcript.done"
    assert dict(headers)["ce_id"] == f"reconciled:{tid}:done".encode()
    await h.worker.on_event(h.offsets.inbound(TRANSCRIPT_EVENTS.name, key, body))
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.DONE


async def test_a_transcript_still_processing_at_the_deadline_is_waited_for() -> None:
    h = Harness()
    await h.worker.on_event(h.event("recording.done"))
    h.clock.advance(LIMITS.deadline_seconds + 1)
    await h.sweep()
    await h.sweep()
    assert len(h.recall.retrieves) == 1  # checked once, then given another deadline
    assert h.out.transcript_events == [] and h.out.failed == []
    h.clock.advance(LIMITS.deadline_seconds + 1)
    await h.sweep()
    assert len(h.recall.retrieves) == 2


async def test_a_create_that_never_reached_recall_is_repeated_at_the_deadline() -> None:
    h = Harness()
    h.recall.gate = asyncio.Event()
    crashed = asyncio.create_task(h.worker.on_event(h.event("recording.done")))
    await h.recall.entered.wait()
    crashed.cancel()  # the process died mid-call; the event's offset was committed by an earlier bug, or lost
    with pytest.raises(asyncio.CancelledError):
        await crashed
    h.recall.gate = None
    h.restart()
    h.clock.advance(LIMITS.deadline_seconds + 1)
    await h.sweep()
    assert h.recall.lists == [REC]
    state = h.worker.load(REC)
    assert state is not None and state.current is not None
    assert state.current.transcript_id == "tr-test-rec-core-1-attempt-1"


async def test_retryable_create_failures_are_bounded() -> None:
    h = Harness()
    h.recall.always_raise = RecallServerError("503", status=503)
    await h.worker.on_event(h.event("recording.done"))
    for _ in range(100):
        if not await h.wake_up(after=120):
            break
    (failed,) = h.out.failed
    assert failed.reason is FailureReason.RECALL_UNAVAILABLE
    assert len(h.recall.creates) < 100


# --- 5. bounded state -----------------------------------------------------------------------------------------------


class CountingTable(StreamOnlyTable):
    scans = 0

    def items(self) -> Any:
        self.scans += 1
        return super().items()


async def test_the_retry_timer_reads_the_due_index_not_the_table() -> None:
    h = Harness(CountingTable())
    h.recall.create_errors = [RecallServerError("503", status=503)]
    await h.worker.on_event(h.event("recording.done"))
    assert await h.wake_up() == 1
    assert h.table.scans == 0  # type: ignore[attr-defined]
    assert len(h.recall.creates) == 2


async def test_a_finished_recording_is_removed_after_the_retention() -> None:
    h = Harness()
    await h.worker.on_event(h.event("recording.deleted"))
    await h.sweep_after(LIMITS.retention_seconds - 1)
    assert REC in h.table
    await h.sweep_after(2)
    assert REC not in h.table


# --- 6. idempotency beyond Recall's replay window -------------------------------------------------------------------


async def test_a_create_repeated_after_the_replay_window_adopts_the_transcript_recall_has() -> None:
    h = Harness()
    h.recall.create_errors = [RecallServerError("503 after the transcript was created", status=503)]
    await h.worker.on_event(h.event("recording.done"))
    # Recall did create it (the 503 came from a proxy after): our metadata names the attempt.
    meta = {"pipeline": "test", "pipeline_attempt": "1", "recording_id": REC}
    h.recall.transcripts["tr-made-earlier"] = artifact("tr-made-earlier", REC, meta)
    assert await h.wake_up(after=2 * 3600) == 1  # long after Recall's one-hour replay window
    assert len(h.recall.creates) == 1
    state = h.worker.load(REC)
    assert state is not None and state.current is not None
    assert state.current.transcript_id == "tr-made-earlier"
    assert state.status is Status.TRANSCRIBING


async def test_a_create_repeated_within_the_window_relies_on_the_idempotency_key() -> None:
    h = Harness()
    h.recall.create_errors = [RecallServerError("503", status=503)]
    await h.worker.on_event(h.event("recording.done"))
    assert await h.wake_up(after=60) == 1
    assert h.recall.lists == [] and len(h.recall.creates) == 2


# --- the chaos fault hook -------------------------------------------------------------------------------------------


async def test_an_injected_fault_is_parked_like_any_unforeseen_exception() -> None:
    h = Harness()
    h.worker.faults.probability = 1.0
    await h.worker.on_event(h.event("recording.done"))
    assert "InjectedFault" in h.table[REC]["supervision"]["last_error"]
    h.worker.faults.probability = 0.0
    await h.wake_up()
    state = h.worker.load(REC)
    assert state is not None and state.status is Status.TRANSCRIBING and h.worker.faults.raised == 1


async def test_a_recording_done_replayed_after_its_state_expired_adopts_the_transcript_recall_has() -> None:
    h = Harness()
    await h.worker.on_event(h.event("recording.done"))  # created; the state later expires
    h.table.clear()
    h.clock.advance(LIMITS.retention_seconds + 1)
    await h.worker.on_event(h.event("recording.done"))  # an operator replays the DLQ, days later
    assert len(h.recall.creates) == 1 and h.recall.lists == [REC]
    state = h.worker.load(REC)
    assert state is not None and state.current is not None
    assert state.current.transcript_id == "tr-test-rec-core-1-attempt-1"


async def test_a_fallback_create_interrupted_by_an_error_is_made_on_the_wake_up() -> None:
    # Found by the chaos harness with the fault hook on: the redone transcript.failed found attempt 1 already failed
    # and did nothing, so attempt 2 stayed "requested" with no create ever made.
    h = Harness()
    await h.worker.on_event(h.event("recording.done"))
    h.recall.create_errors = [KeyError("shape never seen")]
    failed = h.event(
        "transcript.failed", transcript_id="tr-test-rec-core-1-attempt-1", pipeline="test", pipeline_attempt="1"
    )
    await h.worker.on_event(failed)
    await h.wake_up()
    state = h.worker.load(REC)
    assert state is not None and state.current is not None and state.current.number == 2
    assert state.current.transcript_id == "tr-test-rec-core-1-attempt-2"


async def test_recordings_that_left_the_table_leave_nothing_in_the_worker() -> None:
    """Issue 12 (state growth): after many recordings ended (one with an unforeseen error on the way) and left the
    Table, none of the worker's per-recording structures holds anything: the lock map, the due-index, the retry
    dispatcher's sent-set (once its re-dispatch memory ran out)."""
    h = Harness()
    recordings = [f"rec-growth-{n}" for n in range(50)]
    h.recall.create_errors = [RecursionError("maximum recursion depth exceeded")]
    for rec in recordings:
        await h.worker.on_event(h.offsets.inbound(RECORDING_EVENTS.name, rec, webhook("recording.done", rec)))
    assert await h.wake_up() >= 1  # the parked one is woken and created
    for rec in recordings:
        done = webhook(
            "transcript.done", rec, transcript_id=f"tr-test-{rec}-attempt-1", pipeline="test", pipeline_attempt="1"
        )
        await h.worker.on_event(h.offsets.inbound(TRANSCRIPT_EVENTS.name, rec, done))
    assert all(h.worker.load(rec).status is Status.DONE for rec in recordings)  # type: ignore[union-attr]
    await h.sweep_after(LIMITS.retention_seconds + 1)
    h.worker.dispatcher._clock = lambda: 1e12  # its re-dispatch memory has run out
    await h.worker.dispatch_due_retries()
    assert len(h.table) == 0
    assert len(h.worker.locks) == 0
    assert list(h.worker.table.pending()) == []
    assert h.worker.dispatcher._sent == {}
