"""The per-recording lifecycle kept in the faust Table (one JSON document per recording id)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from pipeline_common.contracts import AttemptRecord, FailureReason
from pipeline_common.retries import ScheduledRetry


class Status(StrEnum):
    TRANSCRIBING = "transcribing"  # an attempt is requested or created, waiting for Recall
    RETRY_SCHEDULED = "retry_scheduled"  # a create must be retried (Recall 429/5xx/lost response)
    BLOCKED = "blocked"  # Recall refuses our credentials (401/402/403): retried slowly, loudly
    DONE = "done"  # transcript.done for one of our attempts; the fetcher takes it from here
    FAILED = "failed"  # TranscriptFailed emitted


TERMINAL = frozenset({Status.DONE, Status.FAILED})

AttemptOutcome = Literal["requested", "created", "done", "failed", "rejected"]


class Attempt(BaseModel):
    model_config = ConfigDict(extra="ignore")

    number: int = Field(ge=1)
    provider_index: int = Field(ge=0)
    provider: str
    idempotency_key: str
    outcome: AttemptOutcome = "requested"
    transcript_id: str | None = None
    sub_code: str | None = None
    http_status: int | None = None
    message: str | None = None
    create_failures: int = Field(default=0, ge=0, description="create calls that failed and were retried")
    requested_at: AwareDatetime
    updated_at: AwareDatetime

    def record(self) -> AttemptRecord:
        """The public record of this attempt: the fields the contract shares with the state, by name."""
        return AttemptRecord.model_validate(self.model_dump(include=set(AttemptRecord.model_fields)))


class RetrySchedule(ScheduledRetry):
    """A recording's scheduled create retry: which attempt it retries."""

    attempt: int = Field(ge=1, description="the attempt whose create call is retried (same Idempotency-Key)")


class RecordingState(BaseModel):
    model_config = ConfigDict(extra="ignore")

    recording_id: str
    bot_id: str | None = None
    status: Status = Status.TRANSCRIBING
    attempts: list[Attempt] = Field(default_factory=list)
    retry: RetrySchedule | None = None
    retry_sequence: int = 0
    failure_reason: FailureReason | None = None
    failed_at: AwareDatetime | None = None
    #: Outbox: False between storing FAILED and the broker's ack of TranscriptFailed; a redelivered event, a wake-up
    #: or the sweep that finds it False emits again (same ce_id, so consumers drop the copy).
    failed_emitted: bool = True
    #: When the sweep last asked Recall about a recording past its deadline (the next check is a deadline later).
    checked_at: AwareDatetime | None = None
    recording_metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: AwareDatetime
    updated_at: AwareDatetime

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.number == number:
                return attempt
        return None

    def attempt_for_transcript(self, transcript_id: str) -> Attempt | None:
        for attempt in self.attempts:
            if attempt.transcript_id == transcript_id:
                return attempt
        return None

    def to_table(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @classmethod
    def from_table(cls, value: Any) -> RecordingState | None:
        # A value with no recording_id is the supervisor's alone (events parked before any state was stored).
        return None if value is None or "recording_id" not in value else cls.model_validate(value)

    def touched(self, now: datetime) -> RecordingState:
        return self.model_copy(update={"updated_at": now})
