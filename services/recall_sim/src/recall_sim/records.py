"""The simulator's records: the recordings, transcripts, calls and idempotency entries it keeps, and its clock."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from recall_sim.generator import TranscriptSpec
from recall_sim.webhooks import iso

__all__ = ["TRANSCRIPT_RETENTION", "Call", "Clock", "IdempotencyEntry", "Recording", "SimTranscript"]

TRANSCRIPT_RETENTION: Final = timedelta(days=7)


class Clock:
    """Wall-clock time that tests can move forward (URL expiry, idempotency TTL, rate windows)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


@dataclass
class Recording:
    id: str
    bot_id: str | None
    metadata: dict[str, Any]
    bot_metadata: dict[str, Any]
    status: str
    sub_code: str | None
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    updated_at: datetime
    spec: TranscriptSpec

    def to_dict(self, latest_transcript: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at) if self.completed_at else None,
            "expires_at": iso(self.created_at + TRANSCRIPT_RETENTION),
            "status": {"code": self.status, "sub_code": self.sub_code, "updated_at": iso(self.updated_at)},
            "media_shortcuts": {"transcript": latest_transcript},
            "metadata": self.metadata,
            "bot": {"id": self.bot_id, "metadata": self.bot_metadata} if self.bot_id else None,
        }


@dataclass
class SimTranscript:
    id: str
    seq: int
    recording_id: str
    provider: dict[str, Any]
    provider_name: str
    diarization: dict[str, Any] | None
    metadata: dict[str, Any]
    status: str
    sub_code: str | None
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None
    deleted: bool = False


@dataclass
class Call:
    seq: int
    at: str
    method: str
    path: str
    endpoint: str
    status: int | None = None
    outcome: str = "pending"
    recording_id: str | None = None
    transcript_id: str | None = None
    bot_id: str | None = None
    idempotency_key: str | None = None
    provider: str | None = None
    authorization_sent: bool = False
    latency_ms: int = 0


@dataclass
class IdempotencyEntry:
    in_flight: bool
    created: float
    status: int = 0
    body: bytes = b""
