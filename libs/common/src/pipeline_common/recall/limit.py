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
from typing import Any, Final

from pipeline_common.recall.models import TranscriptArtifact

__all__ = ["ours", "transcripts_to_delete"]

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
