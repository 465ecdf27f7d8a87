"""In-process doubles for the transcriber's edges: a Recall that remembers what it was asked, senders that record."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline_common.recall.models import Diarization, TranscriptArtifact
from pipeline_common.recall.providers import ProviderConfig
from tests.support.worker_core import START, Clock, Offsets, Outputs

__all__ = ["START", "Clock", "FakeRecall", "Offsets", "Outputs", "artifact", "webhook"]


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
