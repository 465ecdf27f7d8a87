"""The example events the documents show (also what the tests and the example consumer parse)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from pipeline_common.cloudevents import (
    CloudEventAttributes,
    build_headers,
)
from pipeline_common.contracts import TranscriptFailed, TranscriptReady
from pipeline_common.recall.events import WebhookEvent

_EXAMPLE_RECORDING: Final = "rec_5f1c2b9e"
_EXAMPLE_TRANSCRIPT: Final = "tr_8a41d7c3"
_EXAMPLE_BOT: Final = "bot_27c0e4aa"
_EXAMPLE_TIME: Final = datetime(2025, 3, 4, 15, 30, 12, tzinfo=UTC)
_EXAMPLE_TRACEPARENT: Final = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _stored(name: str, content_type: str, sha: str, size: int) -> dict[str, Any]:
    return {
        "uri": f"s3://acme-transcripts/pipeline/recordings/{_EXAMPLE_RECORDING}/transcripts/{_EXAMPLE_TRANSCRIPT}/{name}",
        "sha256": sha * 64,
        "size_bytes": size,
        "content_type": content_type,
    }


def example_ready() -> TranscriptReady:
    """A realistic ``TranscriptReady`` (it passes the model, so the documented example cannot drift from it)."""
    return TranscriptReady.model_validate(
        {
            "recording_id": _EXAMPLE_RECORDING,
            "transcript_id": _EXAMPLE_TRANSCRIPT,
            "bot_id": _EXAMPLE_BOT,
            "provider": "recallai_async",
            "attempt": 1,
            "language_codes": ["en"],
            "participants": [
                {"id": 100, "name": "Ada Lovelace", "is_host": True, "platform": "zoom"},
                {"id": 101, "name": "Charles Babbage", "is_host": False, "platform": "zoom"},
            ],
            "word_count": 5321,
            "speech_duration_seconds": 2486.4,
            "raw": _stored("transcript.json", "application/json", "a", 1_384_210),
            "readable": _stored("readable.json", "application/json", "b", 61_377),
            "renditions": {
                "txt": _stored("transcript.txt", "text/plain; charset=utf-8", "c", 41_020),
                "vtt": _stored("transcript.vtt", "text/vtt; charset=utf-8", "d", 58_911),
                "srt": _stored("transcript.srt", "application/x-subrip; charset=utf-8", "e", 57_204),
            },
            "recording_metadata": {"customer_id": "cus_193"},
            "transcript_metadata": {},
            "completed_at": _EXAMPLE_TIME,
            "ready_at": datetime(2025, 3, 4, 15, 30, 14, tzinfo=UTC),
        }
    )


def example_failed() -> TranscriptFailed:
    return TranscriptFailed.model_validate(
        {
            "recording_id": _EXAMPLE_RECORDING,
            "bot_id": _EXAMPLE_BOT,
            "reason": "providers_exhausted",
            "attempts": [
                {
                    "number": 1,
                    "provider": "recallai_async",
                    "transcript_id": "tr_0b9d11e2",
                    "outcome": "failed",
                    "sub_code": "provider_connection_failed",
                    "message": "transcript.failed",
                },
                {
                    "number": 2,
                    "provider": "deepgram_async",
                    "transcript_id": _EXAMPLE_TRANSCRIPT,
                    "outcome": "failed",
                    "sub_code": "provider_connection_failed",
                    "message": "transcript.failed",
                },
            ],
            "recording_metadata": {"customer_id": "cus_193"},
            "failed_at": _EXAMPLE_TIME,
        }
    )


def example_webhook(event: str) -> dict[str, Any]:
    """A Recall webhook body (``recording.done``, ``transcript.done``, ``bot.done``, ``audio_mixed.done``, ...),
    checked against :class:`WebhookEvent`."""
    family, code = event.split(".", 1)
    status = {"code": code, "sub_code": None, "updated_at": "2025-03-04T15:30:12.339940Z"}
    data: dict[str, Any] = {"data": status, "bot": {"id": _EXAMPLE_BOT, "metadata": {}}}
    if family != "bot":
        data["recording"] = {"id": _EXAMPLE_RECORDING, "metadata": {"customer_id": "cus_193"}}
    if family == "transcript":
        data["transcript"] = {"id": _EXAMPLE_TRANSCRIPT, "metadata": {}}
    elif family not in {"recording", "bot"}:
        data[family] = {"id": "am_61d0c5f2", "metadata": {}}
    body = {"event": event, "data": data}
    WebhookEvent.model_validate(body)
    return body


def _example(
    payload: dict[str, Any], *, name: str, summary: str, ce_type: str, ce_id: str, source: str, subject: str
) -> dict[str, Any]:
    attributes = CloudEventAttributes(
        id=ce_id, source=source, type=ce_type, time=_EXAMPLE_TIME, subject=subject, traceparent=_EXAMPLE_TRACEPARENT
    )
    return {
        "name": name,
        "summary": summary,
        "headers": {header: value.decode() for header, value in build_headers(attributes)},
        "payload": payload,
    }
