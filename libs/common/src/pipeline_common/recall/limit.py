"""Recall's transcripts-per-recording limit: which of *our own* transcripts may be deleted to make room.

Recall's current guide allows 10 successful transcripts per recording and says to delete one to go on. With
``RECALL_DELETE_OWN_TRANSCRIPTS_AT_LIMIT`` the client does that instead of failing the recording, but only ever
deletes a transcript this pipeline created: its metadata names this pipeline (``pipeline``) and this recording
(``recording_id``), as every create of the transcriber writes. Anything else (created by a person, another system,
or another pipeline's prefix) is never touched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Protocol

from pipeline_common.logging import get_logger
from pipeline_common.recall.errors import RecallNotFound
from pipeline_common.recall.models import TranscriptArtifact

__all__ = ["make_room", "ours", "transcripts_to_delete"]

log = get_logger("pipeline_common.recall.limit")


class TranscriptApi(Protocol):
    async def list_transcripts(self, *, recording_id: str | None = None) -> list[TranscriptArtifact]: ...
    async def delete_transcript(self, transcript_id: str) -> None: ...


_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)


def ours(transcript: TranscriptArtifact, create_metadata: Mapping[str, Any], recording_id: str) -> bool:
    """True when ``transcript`` was created by the pipeline whose create carries ``create_metadata``."""
    pipeline = create_metadata.get("pipeline")
    metadata = transcript.metadata or {}
    return (
        isinstance(pipeline, str)
        and bool(pipeline)
        and metadata.get("pipeline") == pipeline
        and metadata.get("recording_id") == recording_id
    )


def transcripts_to_delete(
    transcripts: Iterable[TranscriptArtifact], create_metadata: Mapping[str, Any], recording_id: str
) -> list[str]:
    """Our failed transcripts of the recording (they hold a slot and nothing else); if there are none, our oldest
    done one (its copy is already in the store). Never one still processing, never one that is not ours."""
    mine = [t for t in transcripts if ours(t, create_metadata, recording_id)]
    failed = [t.id for t in sorted(mine, key=_created) if t.is_failed]
    if failed:
        return failed
    done = sorted((t for t in mine if t.is_done), key=_created)
    return [done[0].id] if done else []


def _created(transcript: TranscriptArtifact) -> datetime:
    return transcript.created_at or _EARLIEST


async def make_room(recall: TranscriptApi, recording_id: str, create_metadata: Mapping[str, Any]) -> bool:
    """Delete our own failed (else oldest done) transcripts of the recording; True if any went."""
    candidates = transcripts_to_delete(
        await recall.list_transcripts(recording_id=recording_id), create_metadata, recording_id
    )
    for transcript_id in candidates:
        log.warning(
            "Recall's transcript limit reached: deleting one of our own transcripts of the recording",
            recording_id=recording_id,
            transcript_id=transcript_id,
        )
        try:
            await recall.delete_transcript(transcript_id)
        except RecallNotFound:
            continue
    return bool(candidates)
