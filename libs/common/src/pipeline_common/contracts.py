"""The public events this pipeline publishes for downstream services (docs/architecture.md, "Kafka contract").
Versioned: additive changes keep ``schema_version`` 1; anything that breaks a consumer bumps it (and the topic
documentation says so).

``TranscriptReady`` on ``transcripts.ready``: a transcript is stored and verified; the event points at the store
(claim check), it does not inline the transcript. ``TranscriptFailed`` on ``transcripts.failed``: this recording will
get no transcript from the pipeline, with every attempt and a machine-readable reason.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

READY_EVENT_TYPE = "ai.recall.pipeline.transcript.ready"
FAILED_EVENT_TYPE = "ai.recall.pipeline.transcript.failed"


def failed_event_id(recording_id: str) -> str:
    """The ``ce_id`` of a recording's TranscriptFailed, whichever worker sends it and however often: consumers keep
    the first and drop the rest."""
    return f"transcript-failed:{recording_id}"


class ContractModel(BaseModel):
    # Consumers should ignore fields they do not know (extra="ignore" when they parse); we never emit unknown ones.
    model_config = ConfigDict(extra="forbid", frozen=True)


class FailureReason(StrEnum):
    PROVIDERS_EXHAUSTED = "providers_exhausted"
    RECORDING_FAILED = "recording_failed"
    RECORDING_DELETED = "recording_deleted"
    TRANSCRIPT_LIMIT = "transcript_limit"
    REJECTED_BY_RECALL = "rejected_by_recall"
    BLOCKED_BY_FIREWALL = "blocked_by_firewall"  # Recall's firewall answered 403 to every retry of the create
    #: Recall kept answering a create with retryable errors (5xx, 409, unparseable) past the retry bounds.
    RECALL_UNAVAILABLE = "recall_unavailable"
    #: The transcript was made but the fetcher could not store it (invalid, over the size cap, a download host it may
    #: not use, or out of attempts); the source event is in fetcher.dlq for an operator.
    TRANSCRIPT_REJECTED = "transcript_rejected"
    #: The transcript was made but was gone when the fetcher came for it (deleted at Recall, 404, or ``failed``
    #: there); nothing was stored and nothing is in a DLQ: there is nothing to replay.
    TRANSCRIPT_GONE = "transcript_gone"
    #: A worker hit unforeseen errors on this recording past its bound; the events are in the worker's DLQ.
    INTERNAL_ERROR = "internal_error"


class AttemptRecord(ContractModel):
    """One Create Async Transcript attempt, as it ended (or stands)."""

    number: int = Field(ge=1, le=10)
    provider: str
    transcript_id: str | None = None
    outcome: Literal["requested", "created", "done", "failed", "rejected"]
    sub_code: str | None = Field(default=None, description="Recall's sub_code of transcript.failed")
    http_status: int | None = Field(default=None, description="HTTP status of a rejected create")
    message: str | None = None


class TranscriptFailed(ContractModel):
    schema_version: Literal[1] = 1
    recording_id: str
    bot_id: str | None = None
    reason: FailureReason
    attempts: list[AttemptRecord]
    recording_metadata: dict[str, Any] = Field(default_factory=dict)
    failed_at: AwareDatetime


class StoredObject(ContractModel):
    uri: str = Field(description="file:///... or s3://bucket/key")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size_bytes: int = Field(ge=0)
    content_type: str


class Participant(ContractModel):
    id: int | str | None = None
    name: str | None = None
    is_host: bool | None = None
    platform: str | None = None
    email: str | None = None


class TranscriptReady(ContractModel):
    schema_version: Literal[1] = 1
    recording_id: str
    transcript_id: str
    bot_id: str | None = None
    provider: str | None = Field(description="the provider key that produced it, e.g. recallai_async")
    attempt: int | None = Field(default=None, ge=1, le=10, description="which attempt of the fallback chain")
    language_codes: list[str] = Field(default_factory=list)
    participants: list[Participant] = Field(default_factory=list)
    word_count: int = Field(ge=0)
    unnamed_word_count: int = Field(
        default=0,
        ge=0,
        description="words spoken by participants without a name: in the txt, vtt and srt renditions, not in "
        "readable (which is exactly Recall's convert_to_readable_transcript)",
    )
    speech_duration_seconds: float = Field(ge=0)
    raw: StoredObject = Field(description="the transcript JSON exactly as Recall served it")
    readable: StoredObject = Field(description="speaker-grouped readable form (JSON)")
    renditions: dict[str, StoredObject] = Field(default_factory=dict, description="txt, vtt, srt, ...")
    provider_data: StoredObject | None = Field(
        default=None, description="the provider's raw response, when the fetcher is configured to store it"
    )
    recording_metadata: dict[str, Any] = Field(default_factory=dict)
    transcript_metadata: dict[str, Any] = Field(default_factory=dict)
    completed_at: AwareDatetime = Field(description="when Recall finished the transcript (transcript.done)")
    ready_at: AwareDatetime = Field(description="when the pipeline stored and announced it")
