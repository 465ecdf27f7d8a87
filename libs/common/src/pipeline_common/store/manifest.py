"""The manifest: what a complete stored transcript consists of, written last (the commit point), and the index that
finds a transcript by its id alone."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pipeline_common.contracts import StoredObject, TranscriptReady
from pipeline_common.store.base import MANIFEST_MAX_BYTES, TranscriptStore, json_bytes
from pipeline_common.store.errors import ObjectNotFound, StoreError
from pipeline_common.store.layout import TranscriptKeys


class Announcement(BaseModel):
    """Where the transcript's ``transcripts.ready`` event goes, recorded before it is sent: after a crash, the
    fetcher looks for ``event_id`` in ``partition`` from ``floor_offset`` on before announcing again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: str
    partition: int = Field(ge=0)
    floor_offset: int = Field(ge=0)
    event_id: str


class Manifest(BaseModel):
    """What a complete stored transcript consists of. ``objects`` names: raw, readable, txt, vtt, srt and, when
    stored, provider_data."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    recording_id: str
    transcript_id: str
    objects: dict[str, StoredObject]
    stored_at: AwareDatetime
    event: TranscriptReady | None = None
    announcement: Announcement | None = None

    def object(self, name: str) -> StoredObject | None:
        return self.objects.get(name)


async def write_manifest(store: TranscriptStore, manifest: Manifest) -> StoredObject:
    """Write the index entry, then the manifest (the manifest is the commit point of a stored transcript)."""
    keys = TranscriptKeys(manifest.recording_id, manifest.transcript_id)
    index = {"recording_id": manifest.recording_id, "transcript_id": manifest.transcript_id, "manifest": keys.manifest}
    data = manifest.model_dump_json(indent=2).encode() + b"\n"
    _, stored = await store.put_many(
        [
            (TranscriptKeys.index(manifest.transcript_id), json_bytes(index), "application/json"),
            (keys.manifest, data, "application/json"),
        ]
    )
    return stored


async def read_manifest(store: TranscriptStore, keys: TranscriptKeys) -> Manifest | None:
    """The transcript's manifest, or None when it is not (completely) stored."""
    try:
        raw = await store.get_bytes(keys.manifest, max_bytes=MANIFEST_MAX_BYTES)
    except ObjectNotFound:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as error:
        raise StoreError(f"{keys.manifest} is not a valid manifest ({error.error_count()} errors)") from None


async def find_transcript(store: TranscriptStore, transcript_id: str) -> TranscriptKeys | None:
    """Where a transcript is stored, by its id alone (through the index), or None."""
    try:
        index = await store.get_json(TranscriptKeys.index(transcript_id))
    except ObjectNotFound:
        return None
    if not isinstance(index, dict) or not isinstance(index.get("recording_id"), str):
        raise StoreError(f"index entry of {transcript_id} is not valid")
    return TranscriptKeys(index["recording_id"], transcript_id)
