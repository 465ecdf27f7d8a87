"""In-process doubles for the transcriber's edges: a Recall that remembers what it was asked, senders that record."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline_common.contracts import TranscriptFailed
from pipeline_common.recall.models import Diarization, TranscriptArtifact
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.retries import RetryDue
from pipeline_common.worker import Inbound

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def artifact(
    transcript_id: str, recording_id: str, metadata: Mapping[str, Any], code: str = "processing"
) -> TranscriptArtifact:
    return TranscriptArtifact.model_validate(
        {
            "id": transcript_id,
            "recording": {"id": recording_id, "metadata": {}},
            "status": {"code": code, "sub_code": None, "updated_at": START.isoformat()},
            "metadata": dict(metadata),
        }
    )


@dataclass
class FakeRecall:
    creates: list[dict[str, Any]] = field(default_factory=list)
    transcripts: dict[str, TranscriptArtifact] = field(default_factory=dict)
    create_errors: list[BaseException] = field(default_factory=list)
    always_raise: BaseException | None = None
    gate: asyncio.Event | None = None
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    retrieves: list[str] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)

    async def create_transcript(
        self,
        recording_id: str,
        provider: ProviderConfig,
        diarization: Diarization | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TranscriptArtifact:
        self.creates.append({"recording_id": recording_id, "key": idempotency_key, "metadata": dict(metadata or {})})
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.always_raise is not None:
            raise self.always_raise
        if self.create_errors:
            raise self.create_errors.pop(0)
        transcript_id = f"tr-{idempotency_key}"
        created = self.transcripts.get(transcript_id) or artifact(transcript_id, recording_id, metadata or {})
        self.transcripts[transcript_id] = created
        return created

    async def retrieve_transcript(self, transcript_id: str) -> TranscriptArtifact:
        self.retrieves.append(transcript_id)
        return self.transcripts[transcript_id]

    async def list_transcripts(self, *, recording_id: str | None = None, **filters: str) -> list[TranscriptArtifact]:
        self.lists.append(recording_id or "")
        return [t for t in self.transcripts.values() if t.recording is not None and t.recording.id == recording_id]


@dataclass
class Outputs:
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


class Offsets:
    def __init__(self) -> None:
        self.next = 0

    def inbound(self, topic: str, key: str, body: dict[str, Any] | bytes) -> Inbound:
        self.next += 1
        value = body if isinstance(body, bytes) else json.dumps(body).encode()
        return Inbound(topic=topic, partition=0, offset=self.next, key=key.encode(), value=value, headers=[])


def webhook(
    event: str, recording_id: str, *, transcript_id: str | None = None, **transcript_meta: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "data": {"code": event.split(".")[1], "sub_code": None, "updated_at": START.isoformat()},
        "recording": {"id": recording_id, "metadata": {}},
        "bot": {"id": "bot-1", "metadata": {}},
    }
    if transcript_id is not None:
        data["transcript"] = {"id": transcript_id, "metadata": transcript_meta}
    return {"event": event, "data": data}


class StreamOnlyTable(dict[str, Any]):
    """A dict with faust's rule for a Table: a key is written only inside stream iteration (faust sends each write to
    the changelog partition of the event in hand), never from a timer. A test sets ``in_timer`` around the timer's
    work; a write then raises what faust raises."""

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


async def run_sweep(table: Any, worker: Any, retries: list[RetryDue], offsets: Offsets, retries_topic: str) -> int:
    """The sweep as the timer runs it (no Table write allowed), then every wake-up it sent handed to the retries
    agent (inside stream iteration). Returns the number of wake-ups."""
    sent = len(retries)
    table.in_timer = True
    try:
        await worker.sweep()
    finally:
        table.in_timer = False
    woken = retries[sent:]
    for due in woken:
        await worker.on_retry(offsets.inbound(retries_topic, due.recording_id, due.dumps()))
    return len(woken)
