"""Pydantic models for what Recall returns: transcript and recording artifacts, and the downloaded transcript.

Tolerant of fields Recall adds later (kept, not rejected), strict about the fields we rely on (ids, status codes,
URLs, word text and timestamps): a wrong type there is an :class:`InvalidRecallPayload`, not a silent ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import (
    Field,
    RootModel,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
)

from pipeline_common.recall._base import PassThroughModel, RecallModel, parse_model
from pipeline_common.recall.providers import PROVIDER_NAMES, ProviderConfig

__all__ = [
    "ArtifactStatus",
    "BotRef",
    "CreateTranscriptRequest",
    "Diarization",
    "Participant",
    "ProviderConfig",
    "RecordingArtifact",
    "RecordingRef",
    "Timestamp",
    "Transcript",
    "TranscriptArtifact",
    "TranscriptDataUrls",
    "TranscriptPage",
    "TranscriptPart",
    "Word",
    "parse_recording_artifact",
    "parse_transcript",
    "parse_transcript_artifact",
    "parse_transcript_page",
]

RecallId = Annotated[StrictStr, StringConstraints(min_length=1, max_length=256)]
Metadata = dict[str, Any]
Seconds = Annotated[StrictFloat, Field(allow_inf_nan=False)]

API_RESPONSE_MAX_BYTES: Final = 8 * 1024 * 1024
#: Recall's custom metadata: string keys and string values, no nesting, at most this many characters.
METADATA_MAX_CHARS: Final = 500


def check_metadata(metadata: Mapping[str, Any]) -> dict[str, str]:
    """The metadata as Recall accepts it, or ValueError naming the first problem (never echoing a value)."""
    checked: dict[str, str] = {}
    for key, value in metadata.items():
        if not isinstance(key, str) or not key:
            raise ValueError("metadata keys must be non-empty strings")
        if len(key) > METADATA_MAX_CHARS:
            raise ValueError(f"metadata key {key[:40]!r}... is over {METADATA_MAX_CHARS} characters")
        if not isinstance(value, str):
            raise ValueError(f"metadata value of {key[:40]!r} must be a string (no numbers, null or nesting)")
        if len(value) > METADATA_MAX_CHARS:
            raise ValueError(f"metadata value of {key[:40]!r} is over {METADATA_MAX_CHARS} characters")
        checked[key] = value
    return checked


class Diarization(PassThroughModel):
    """``diarization`` in Create Async Transcript; forwarded as given (hybrid and other options pass through)."""

    use_separate_streams_when_available: StrictBool | None = None


class ArtifactStatus(RecallModel):
    code: StrictStr  # processing, done, failed, deleted
    sub_code: StrictStr | None = None
    updated_at: datetime | None = None


class BotRef(RecallModel):
    id: RecallId
    metadata: Metadata | None = None


class RecordingSource(RecallModel):
    bot: BotRef | None = None


class RecordingRef(RecallModel):
    id: RecallId
    source: RecordingSource | None = None
    metadata: Metadata | None = None


class TranscriptDataUrls(RecallModel):
    download_url: StrictStr | None = None
    provider_data_download_url: StrictStr | None = None


class TranscriptArtifact(RecallModel):
    """The Retrieve Transcript response (and each item of List Transcripts)."""

    id: RecallId
    recording: RecordingRef | None = None
    created_at: datetime | None = None
    expires_at: datetime | None = None
    status: ArtifactStatus
    data: TranscriptDataUrls | None = None
    diarization: Diarization | None = None
    metadata: Metadata | None = None
    # Kept raw: Recall echoes the configuration, possibly with keys we do not model; see provider_config.
    provider: dict[str, Any] | None = None

    @property
    def status_code(self) -> str:
        return self.status.code

    @property
    def sub_code(self) -> str | None:
        return self.status.sub_code

    @property
    def is_done(self) -> bool:
        return self.status.code == "done"

    @property
    def is_failed(self) -> bool:
        return self.status.code == "failed"

    @property
    def is_processing(self) -> bool:
        return self.status.code == "processing"

    @property
    def download_url(self) -> str | None:
        return self.data.download_url if self.data else None

    @property
    def provider_data_download_url(self) -> str | None:
        return self.data.provider_data_download_url if self.data else None

    @property
    def recording_id(self) -> str | None:
        return self.recording.id if self.recording else None

    @property
    def bot_id(self) -> str | None:
        if self.recording and self.recording.source and self.recording.source.bot:
            return self.recording.source.bot.id
        return None

    @property
    def metadata_dict(self) -> Metadata:
        return dict(self.metadata or {})

    @property
    def provider_name(self) -> str | None:
        """The provider that made it: the one known provider key with options, else the first key Recall sent."""
        if not self.provider:
            return None
        for name, options in self.provider.items():
            if name in PROVIDER_NAMES and options is not None:
                return name
        return next(iter(self.provider))

    @property
    def provider_config(self) -> ProviderConfig | None:
        """The echoed configuration as a :class:`ProviderConfig`, or None if it is not one we know."""
        name = self.provider_name
        if name is None or self.provider is None:
            return None
        try:
            return ProviderConfig.model_validate({name: self.provider[name]})
        except ValidationError:
            return None


class TranscriptPage(RecallModel):
    """One page of List Transcripts (cursor pagination: follow ``next`` until it is null)."""

    next: StrictStr | None = None
    previous: StrictStr | None = None
    results: list[TranscriptArtifact]


class RecordingArtifact(RecallModel):
    """The Retrieve Recording response (the fields we use; everything else is kept)."""

    id: RecallId
    status: ArtifactStatus | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    expires_at: datetime | None = None
    metadata: Metadata | None = None
    media_shortcuts: dict[str, Any] | None = None
    bot: BotRef | None = None

    @property
    def is_done(self) -> bool:
        return self.status is not None and self.status.code == "done"

    @property
    def bot_id(self) -> str | None:
        return self.bot.id if self.bot else None

    @property
    def metadata_dict(self) -> Metadata:
        return dict(self.metadata or {})


class CreateTranscriptRequest(RecallModel):
    """The Create Async Transcript body."""

    provider: ProviderConfig
    diarization: Diarization | None = None
    metadata: Metadata | None = None

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


# The downloaded transcript ---------------------------------------------------------------------------------------


class Timestamp(RecallModel):
    relative: Seconds | None = None  # seconds from the start of the recording
    absolute: datetime | None = None  # ISO 8601; null for async transcription


class Word(RecallModel):
    text: StrictStr
    start_timestamp: Timestamp | None = None
    end_timestamp: Timestamp | None = None

    @property
    def start(self) -> float | None:
        return self.start_timestamp.relative if self.start_timestamp else None

    @property
    def end(self) -> float | None:
        return self.end_timestamp.relative if self.end_timestamp else None


class Participant(RecallModel):
    id: StrictInt | StrictStr | None = None  # not unique across meetings
    name: StrictStr | None = None
    is_host: StrictBool | None = None
    platform: StrictStr | None = None
    extra_data: Any = None
    email: StrictStr | None = None


class TranscriptPart(RecallModel):
    participant: Participant | None = None  # the first part may have none (speech before the bot joined)
    language_code: StrictStr | None = None
    words: list[Word]

    @property
    def start(self) -> float | None:
        starts = [word.start for word in self.words if word.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> float | None:
        ends = [word.end for word in self.words if word.end is not None]
        return max(ends) if ends else None


class Transcript(RootModel[list[TranscriptPart]]):
    """The JSON behind ``data.download_url``: a list of parts. ``[]`` is a real (silent) transcript."""

    def __len__(self) -> int:
        return len(self.root)

    @property
    def parts(self) -> list[TranscriptPart]:
        return self.root


def parse_transcript(data: bytes | str, *, max_bytes: int | None = None) -> list[TranscriptPart]:
    """Parse a downloaded transcript, or raise :class:`InvalidRecallPayload` saying why."""
    return parse_model(Transcript, data, max_bytes, "transcript").root


def parse_transcript_artifact(
    data: bytes | str, *, max_bytes: int | None = API_RESPONSE_MAX_BYTES
) -> TranscriptArtifact:
    return parse_model(TranscriptArtifact, data, max_bytes, "transcript artifact")


def parse_transcript_page(data: bytes | str, *, max_bytes: int | None = API_RESPONSE_MAX_BYTES) -> TranscriptPage:
    return parse_model(TranscriptPage, data, max_bytes, "transcript list")


def parse_recording_artifact(data: bytes | str, *, max_bytes: int | None = API_RESPONSE_MAX_BYTES) -> RecordingArtifact:
    return parse_model(RecordingArtifact, data, max_bytes, "recording")
