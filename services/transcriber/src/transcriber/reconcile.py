"""Deadlines: which recordings have waited too long for Recall, and what Recall's own answer means for them.

A webhook can be lost for good (Recall gives up retrying, an endpoint was disabled): a recording waiting for
``transcript.done``/``failed`` past the deadline is looked up at Recall (Retrieve Transcript, or List Transcripts by
recording when the create's answer was never recorded). A finished transcript is turned back into the webhook Recall
would have sent, published on the transcript topic like any other: the transcriber and the fetcher act on it as if
it had come (both tolerate it twice, should the original turn up too). Pure functions; the worker does the I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime

from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.recall.models import TranscriptArtifact
from transcriber.fallback import Policy
from transcriber.state import Attempt, RecordingState, Status

SOURCE = "urn:recall-pipeline:transcriber"


def past_deadline(state: RecordingState, now: datetime, deadline_seconds: float) -> Attempt | None:
    """The attempt to check at Recall, when the recording has waited ``deadline_seconds`` for it (or since the
    last check)."""
    current = state.current
    if state.status is not Status.TRANSCRIBING or current is None or current.outcome not in ("requested", "created"):
        return None
    since = max(current.updated_at, state.checked_at or current.updated_at)
    return current if (now - since).total_seconds() >= deadline_seconds else None


def ours(transcripts: Iterable[TranscriptArtifact], attempt: Attempt, policy: Policy) -> TranscriptArtifact | None:
    """The transcript at Recall that is this attempt's: by id, else by the metadata we attach to every create."""
    for transcript in transcripts:
        if attempt.transcript_id is not None and transcript.id == attempt.transcript_id:
            return transcript
        metadata = transcript.metadata or {}
        if metadata.get("pipeline") == policy.idempotency_prefix and str(metadata.get("pipeline_attempt")) == str(
            attempt.number
        ):
            return transcript
    return None


def webhook_for(
    state: RecordingState, transcript: TranscriptArtifact, now: datetime
) -> tuple[bytes, list[tuple[str, bytes]]]:
    """The ``transcript.done`` / ``transcript.failed`` Recall would have sent, with a deterministic ``ce_id``."""
    code = "done" if transcript.is_done else "failed"
    body = {
        "event": f"transcript.{code}",
        "data": {
            "data": {
                "code": code,
                "sub_code": transcript.sub_code,
                "updated_at": (transcript.status.updated_at or now).isoformat(),
            },
            "transcript": {"id": transcript.id, "metadata": dict(transcript.metadata or {})},
            "recording": {"id": state.recording_id, "metadata": state.recording_metadata},
            "bot": {"id": state.bot_id, "metadata": {}} if state.bot_id else None,
        },
    }
    headers = build_headers(
        CloudEventAttributes(
            id=f"reconciled:{transcript.id}:{code}",
            source=SOURCE,
            type=f"transcript.{code}",
            time=now,
            subject=state.recording_id,
        )
    )
    return json.dumps(body).encode(), headers
