"""What the fetcher remembers per recording (one JSON document per recording id in a faust Table), and the pure
decisions over it: whether a ``transcript.done`` needs work, and what a failed attempt leads to.

No Kafka, no HTTP, no clock of their own: the app passes ``now`` and a random generator in.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pipeline_common.cloudevents import CloudEventHeaderError, parse_headers
from pipeline_common.contracts import AttemptRecord, FailureReason, TranscriptFailed
from pipeline_common.recall.errors import ErrorKind
from pipeline_common.recall.events import WebhookEvent
from pipeline_common.retries import PendingRetry, RetryDue, ScheduledRetry
from pipeline_common.worker.backoff import RetrySchedule
from pipeline_common.worker.message import Inbound


class Status(StrEnum):
    FETCHING = "fetching"  # work in progress (or interrupted by a crash: the event is redelivered)
    RETRY_SCHEDULED = "retry_scheduled"  # a retryable failure; the retry timer wakes it up
    BLOCKED = "blocked"  # Recall refuses our credentials (401/402/403): retried slowly, loudly
    READY = "ready"  # stored and announced on transcripts.ready
    GONE = "gone"  # deleted at Recall (404, transcript.deleted): nothing to announce
    REJECTED = "rejected"  # invalid, over the size cap, a disallowed host, or out of attempts: in fetcher.dlq


#: A transcript in one of these has ended (for now: a replayed transcript.done tries a rejected or gone one again).
ENDED = frozenset({Status.READY, Status.GONE, Status.REJECTED})

#: A transcript.done for a transcript in one of these needs no work now.
SETTLED_OR_WAITING = frozenset({Status.READY, Status.RETRY_SCHEDULED, Status.BLOCKED})


class Source(BaseModel):
    """The transcript.done that started the work: enough to dead-letter it later, from a retry."""

    model_config = ConfigDict(extra="ignore")

    topic: str
    partition: int
    offset: int
    body: str
    headers: list[tuple[str, str]] = Field(default_factory=list)

    @classmethod
    def of(cls, inbound: Inbound) -> Source:
        stored = inbound.to_json()  # latin-1: every byte to one character and back
        return cls(body=stored.pop("value"), **stored)

    def inbound(self, key: str) -> Inbound:
        """The event again, as it came (for the DLQ)."""
        return replace(Inbound.from_json({**self.model_dump(), "value": self.body}), key=key.encode())


#: A transcript's scheduled download retry.
Retry = ScheduledRetry


class TranscriptState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    transcript_id: str
    status: Status = Status.FETCHING
    bot_id: str | None = None
    completed_at: AwareDatetime | None = Field(default=None, description="transcript.done's data.data.updated_at")
    received_at: AwareDatetime | None = Field(default=None, description="when ingest accepted the webhook")
    recording_metadata: dict[str, Any] = Field(default_factory=dict)
    transcript_metadata: dict[str, Any] = Field(default_factory=dict)
    traceparent: str | None = None
    attempts: int = Field(default=0, ge=0, description="fetch attempts that failed and were retried")
    retry: Retry | None = None
    retry_sequence: int = 0
    last_error: str | None = None
    duplicates: int = Field(default=0, ge=0, description="transcript.done events suppressed as duplicates")
    manifest_uri: str | None = None
    ready_event_id: str | None = None
    ready_partition: int | None = None
    ready_offset: int | None = None
    word_count: int | None = None
    #: Outbox of the TranscriptFailed a rejection publishes: False between storing REJECTED and the broker's ack.
    failed_emitted: bool = True
    #: When the current round of work began (a replayed transcript.done for an ended transcript begins a new one).
    working_since: AwareDatetime | None = None
    failure_reason: FailureReason | None = None
    #: Only while the transcript is in work: what a later dead letter needs. Dropped once it ends.
    source: Source | None = None
    first_seen_at: AwareDatetime
    updated_at: AwareDatetime


class RecordingDoc(BaseModel):
    model_config = ConfigDict(extra="ignore")

    recording_id: str
    transcripts: dict[str, TranscriptState] = Field(default_factory=dict)

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, recording_id: str, value: Any) -> RecordingDoc:
        # A value with no transcripts yet may hold the supervisor's parked events alone.
        return (
            cls(recording_id=recording_id)
            if value is None
            else cls.model_validate({**value, "recording_id": recording_id})
        )

    def public(self) -> dict[str, Any]:
        """What the read API shows: status and pointers, not the stored webhook."""
        return {
            "recording_id": self.recording_id,
            "transcripts": [
                state.model_dump(mode="json", exclude={"source", "traceparent", "retry_sequence"})
                for state in sorted(self.transcripts.values(), key=lambda s: s.first_seen_at)
            ],
        }


@dataclass(frozen=True)
class RetryPolicy(RetrySchedule):
    """Built by ``settings.own(RetryPolicy)`` from the ``FETCHER_`` variables of the same names."""

    max_attempts: int
    #: Retryable failures are bounded in time as well as in count (from the transcript's first sight).
    give_up_seconds: float = 6 * 3600.0


def needs_work(state: TranscriptState | None) -> bool:
    """A transcript.done needs work unless the transcript is announced or already waiting for its retry. A
    rejected or gone one is tried again: that is what replaying the DLQ (or a later done) is for."""
    return state is None or state.status not in SETTLED_OR_WAITING


@dataclass(frozen=True)
class FailureDecision:
    state: TranscriptState
    dead_letter: bool  # out of attempts: to the DLQ
    operator_problem: bool


def on_retryable_failure(
    state: TranscriptState,
    *,
    kind: ErrorKind,
    reason: str,
    retry_after: float | None,
    policy: RetryPolicy,
    now: datetime,
    rng: random.Random,
) -> FailureDecision:
    """Schedule the next attempt (kept in the Table, woken by the retry timer), or give up after ``max_attempts``.
    Operator problems (Recall refusing our key or bill) never give up: they retry slowly until someone fixes them."""
    failures = state.attempts + 1
    operator = kind is ErrorKind.OPERATOR
    trying_for = (now - (state.working_since or state.first_seen_at)).total_seconds()
    if not operator and (failures >= policy.max_attempts or trying_for >= policy.give_up_seconds):
        rejected = state.model_copy(
            update={
                "status": Status.REJECTED,
                "attempts": failures,
                "retry": None,
                "last_error": f"gave up after {failures} attempts"
                + (f" over {trying_for:.0f}s" if failures < policy.max_attempts else "")
                + f": {reason}",
                "updated_at": now,
            }
        )
        return FailureDecision(rejected, dead_letter=True, operator_problem=False)
    delay = policy.operator_retry_delay(failures) if operator else policy.retry_delay(failures, rng, retry_after)
    sequence = state.retry_sequence + 1
    scheduled = state.model_copy(
        update={
            "status": Status.BLOCKED if operator else Status.RETRY_SCHEDULED,
            "attempts": failures,
            "retry": Retry(sequence=sequence, due_at=now + timedelta(seconds=delay), reason=reason),
            "retry_sequence": sequence,
            "last_error": reason,
            "updated_at": now,
        }
    )
    return FailureDecision(scheduled, dead_letter=False, operator_problem=operator)


#: States a wake-up acts on (with the matching schedule). FETCHING with a schedule still attached is a retry that was
#: being carried out when the worker died: the redelivered wake-up must resume it (the transcript.done that started
#: the work is long committed and will not come back, and the retry timer only wakes scheduled ones).
RETRYABLE_NOW = frozenset({Status.RETRY_SCHEDULED, Status.BLOCKED, Status.FETCHING})


def due_retry(state: TranscriptState | None, sequence: int) -> bool:
    """A wake-up from the retries topic is acted on only when it is the transcript's current schedule."""
    return (
        state is not None
        and state.status in RETRYABLE_NOW
        and state.retry is not None
        and state.retry.sequence == sequence
    )


def scheduled_retries(recording_id: str, value: Mapping[str, Any]) -> Iterator[PendingRetry]:
    """The retries one recording's stored JSON schedules (read without building the models: the due-index's feed)."""
    for transcript_id, raw in (value.get("transcripts") or {}).items():
        retry = raw.get("retry")
        if retry and raw.get("status") in (Status.RETRY_SCHEDULED, Status.BLOCKED):
            due = RetryDue(recording_id, transcript_id, int(retry["sequence"]))
            yield PendingRetry(due, datetime.fromisoformat(retry["due_at"]))


def ended(state: TranscriptState, status: Status, error: str | None, now: datetime) -> TranscriptState:
    """The transcript's last state: what only work in progress needs (the source event, the trace) is dropped."""
    return state.model_copy(
        update={
            "status": status,
            "retry": None,
            "last_error": error,
            "source": None,
            "traceparent": None,
            "failed_emitted": True,
            "updated_at": now,
        }
    )


def past_deadline(state: TranscriptState, now: datetime, deadline_seconds: float) -> bool:
    """Left in ``fetching`` with nobody working on it (the worker died and the event will not come back)."""
    return state.status is Status.FETCHING and (now - state.updated_at).total_seconds() >= deadline_seconds


def resume_now(state: TranscriptState, now: datetime) -> TranscriptState:
    """Schedule the transcript's retry for now (the retry timer wakes it through the retries topic)."""
    sequence = state.retry_sequence + 1
    return state.model_copy(
        update={
            "status": Status.RETRY_SCHEDULED,
            "retry": Retry(sequence=sequence, due_at=now, reason="past the deadline in fetching"),
            "retry_sequence": sequence,
            "updated_at": now,
        }
    )


def expired(doc: RecordingDoc, now: datetime, retention_seconds: float) -> bool:
    """Every transcript of the recording ended (and announced), longer ago than the retention."""
    states = list(doc.transcripts.values())
    return bool(states) and all(
        state.status in ENDED and state.failed_emitted and (now - state.updated_at).total_seconds() >= retention_seconds
        for state in states
    )


def attempt_number(metadata: dict[str, object]) -> int | None:
    """The transcriber puts ``pipeline_attempt`` in the metadata of the transcripts it creates."""
    value = metadata.get("pipeline_attempt")
    if isinstance(value, int | str) and str(value).isdigit() and 1 <= int(value) <= 10:
        return int(value)
    return None


def transcript_failed(
    recording_id: str, states: list[TranscriptState], reason: FailureReason | None, now: datetime
) -> TranscriptFailed:
    """The fetcher's TranscriptFailed: the transcripts it gave up, each as the (done at Recall) attempt it was."""
    first = states[0] if states else None
    return TranscriptFailed(
        recording_id=recording_id,
        bot_id=first.bot_id if first else None,
        reason=reason or FailureReason.TRANSCRIPT_REJECTED,
        attempts=[
            AttemptRecord(
                number=attempt_number(dict(state.transcript_metadata)) or 1,
                provider=str(state.transcript_metadata.get("provider") or "unknown"),
                transcript_id=state.transcript_id,
                outcome="done",
                message=f"fetcher: {state.last_error}"[:500],
            )
            for state in states
        ],
        recording_metadata=dict(first.recording_metadata) if first else {},
        failed_at=first.updated_at if first else now,
    )


def start_work(
    state: TranscriptState | None, webhook: WebhookEvent, inbound: Inbound, now: datetime
) -> TranscriptState:
    """The state of a transcript a ``transcript.done`` sets to work: what a retry and a dead letter will need."""
    assert webhook.transcript_id is not None
    try:
        attributes = parse_headers(inbound.headers)
        received_at, traceparent = attributes.time, attributes.traceparent
    except CloudEventHeaderError:
        received_at, traceparent = None, None
    base = state or TranscriptState(transcript_id=webhook.transcript_id, first_seen_at=now, updated_at=now)
    fresh: dict[str, object] = {}
    if state is None or state.status in ENDED:  # a first sight, or a replay after the transcript ended: a new round
        fresh = {"working_since": now, "attempts": 0}
    return base.model_copy(
        update={
            **fresh,
            "status": Status.FETCHING,
            "bot_id": webhook.bot_id,
            "completed_at": webhook.updated_at,
            "received_at": received_at,
            "recording_metadata": webhook.recording_metadata,
            "transcript_metadata": webhook.transcript_metadata,
            "traceparent": traceparent,
            "retry": None,
            "source": Source.of(inbound),
            "updated_at": now,
        }
    )
