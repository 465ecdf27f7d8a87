"""Recall webhook bodies: artifact status events (``recording.*``, ``transcript.*``, ``audio_mixed.*``, ...) and bot
status events (``bot.*``).

Shape (Recall's "artifact status change" webhook)::

    {"event": "transcript.done",
     "data": {"data": {"code": "done", "sub_code": null, "updated_at": "2024-12-04T23:25:56.339940Z"},
              "transcript": {"id": "...", "metadata": {}},
              "recording": {"id": "...", "metadata": {}},
              "bot": {"id": "...", "metadata": {}} | null}}

Fields Recall adds later are kept. An event of a family nobody here consumes still parses (ingest routes it to the
"other" topic) as long as ``event`` is a well-formed ``<family>.<name>`` and ``data`` is an object. What we rely on is
checked: the ids we key Kafka messages by are strings, ``recording.*`` events carry ``data.recording`` and the status
block, ``transcript.*`` events also carry ``data.transcript``, ``bot.*`` events carry ``data.bot`` or (Recall's
``bot.status_change`` and call events) ``data.bot_id``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final

from pydantic import StrictStr, StringConstraints, model_validator

from pipeline_common.recall._base import RecallModel, parse_model
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.models import Metadata, RecallId

__all__ = [
    "ARTIFACT_FAMILIES",
    "ArtifactRef",
    "InvalidRecallPayload",
    "StatusData",
    "WebhookData",
    "WebhookEvent",
    "parse_webhook_event",
]

# The largest body ingest may be configured to accept (INGEST_MAX_BODY_BYTES): what ingest writes, consumers read.
WEBHOOK_MAX_BYTES: Final = 64 * 1024 * 1024
EVENT_NAME_PATTERN: Final = r"^[A-Za-z0-9_-]{1,64}(\.[A-Za-z0-9_-]{1,64}){1,4}$"
# Families whose events we consume and whose shape we therefore insist on.
ARTIFACT_FAMILIES: Final = frozenset({"recording", "transcript"})


class StatusData(RecallModel):
    """``data.data``: the new status of the artifact (or bot)."""

    code: StrictStr
    sub_code: StrictStr | None = None
    updated_at: datetime | None = None


class ArtifactRef(RecallModel):
    id: RecallId
    metadata: Metadata | None = None


class WebhookData(RecallModel):
    data: StatusData | None = None
    recording: ArtifactRef | None = None
    transcript: ArtifactRef | None = None
    bot: ArtifactRef | None = None

    @property
    def bot_id(self) -> str | None:
        """Recall's bot status change (v1.10) and call events name the bot by ``data.bot_id`` alone. Read from the
        extra fields, not declared, so a body without it dumps exactly as it came."""
        value = (self.model_extra or {}).get("bot_id")
        return value if isinstance(value, str) and 0 < len(value) <= 256 else None


class WebhookEvent(RecallModel):
    event: Annotated[StrictStr, StringConstraints(pattern=EVENT_NAME_PATTERN)]
    data: WebhookData

    @model_validator(mode="after")
    def _what_we_rely_on(self) -> WebhookEvent:
        family = self.family
        status = self.data.data
        if family in ARTIFACT_FAMILIES:
            if status is None:
                raise ValueError(f"a {family}.* event needs data.data (code, sub_code, updated_at)")
            if status.updated_at is None:
                raise ValueError(f"a {family}.* event needs data.data.updated_at")
            if self.data.recording is None:
                raise ValueError(f"a {family}.* event needs data.recording")
        if family == "transcript" and self.data.transcript is None:
            raise ValueError("a transcript.* event needs data.transcript")
        if family == "bot" and self.data.bot is None and self.data.bot_id is None:
            raise ValueError("a bot.* event needs data.bot or data.bot_id (a string id)")
        if family not in {"recording", "transcript", "bot"}:
            artifact = (self.data.model_extra or {}).get(family)
            if artifact is not None and not (
                isinstance(artifact, dict) and isinstance(artifact.get("id"), str) and 0 < len(artifact["id"]) <= 256
            ):
                raise ValueError(f"data.{family} must be an object with a string id")
        return self

    @property
    def family(self) -> str:
        """The part before the first dot: ``recording``, ``transcript``, ``bot``, ``audio_mixed``, ..."""
        return self.event.split(".", 1)[0]

    @property
    def name(self) -> str:
        """The part after the first dot: ``done``, ``failed``, ``in_call_recording``, ..."""
        return self.event.split(".", 1)[1]

    @property
    def recording_id(self) -> str | None:
        return self.data.recording.id if self.data.recording else None

    @property
    def transcript_id(self) -> str | None:
        return self.data.transcript.id if self.data.transcript else None

    @property
    def bot_id(self) -> str | None:
        return self.data.bot.id if self.data.bot else self.data.bot_id

    @property
    def artifact_id(self) -> str | None:
        """The id of ``data.<family>`` (the recording of a ``recording.*``, the audio of an ``audio_mixed.*``, ...)."""
        if self.family in {"recording", "transcript", "bot"}:
            ref: ArtifactRef | None = getattr(self.data, self.family)
            return ref.id if ref else None
        artifact = (self.data.model_extra or {}).get(self.family)
        return artifact["id"] if isinstance(artifact, dict) else None

    @property
    def code(self) -> str | None:
        return self.data.data.code if self.data.data else None

    @property
    def sub_code(self) -> str | None:
        return self.data.data.sub_code if self.data.data else None

    @property
    def updated_at(self) -> datetime | None:
        return self.data.data.updated_at if self.data.data else None

    @property
    def recording_metadata(self) -> Metadata:
        return _metadata(self.data.recording)

    @property
    def transcript_metadata(self) -> Metadata:
        return _metadata(self.data.transcript)

    @property
    def bot_metadata(self) -> Metadata:
        return _metadata(self.data.bot)


def _metadata(ref: ArtifactRef | None) -> dict[str, Any]:
    return dict(ref.metadata or {}) if ref else {}


def parse_webhook_event(body: bytes | str, *, max_bytes: int | None = WEBHOOK_MAX_BYTES) -> WebhookEvent:
    """Parse a (verified) webhook body, or raise :class:`InvalidRecallPayload` with a short reason."""
    return parse_model(WebhookEvent, body, max_bytes, "webhook body")
