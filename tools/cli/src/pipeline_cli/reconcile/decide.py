"""What the reconciler decides, as plain functions over typed data (no I/O, the clock passed in).

- :func:`judge_recording`: for one recording Recall lists, publish a synthesised ``recording.done``, look at its
  transcripts, or leave it alone (and why).
- :func:`missing_transcript_events`: the ``transcript.done`` / ``transcript.failed`` the pipeline never saw for a
  recording it is still working on.
- :func:`query_start` and :func:`next_watermark`: the window walked, and how far the watermark may move.
- :func:`recording_done_event` / :func:`transcript_event`: the synthesised events, shaped like Recall's webhook body,
  with a deterministic ``ce_id`` so that two runs (or two overlapping ones) publish the same event.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Final

from pipeline_common.recall.models import RecordingArtifact, TranscriptArtifact
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIPT_EVENTS

SOURCE: Final = "urn:recall-pipeline:reconciler"
# Fixed forever: changing it would change every ce_id and make a re-run look like new events.
_NAMESPACE: Final = uuid.UUID("5b0d6a43-7f1e-4c55-9f5e-3c1a2b9d7e10")
TERMINAL: Final = frozenset({"done", "failed", "deleted"})


class Verdict(StrEnum):
    PUBLISH = "publish"  # done at Recall, unknown to the pipeline: publish recording.done
    CHECK_TRANSCRIPTS = "check_transcripts"  # known, not ended: a transcript webhook may be what went missing
    ENDED = "ended"  # the pipeline announced it (transcripts.ready / transcripts.failed)
    NOT_DONE = "not_done"  # processing, paused, failed or deleted at Recall: nothing to transcribe (yet)
    TOO_RECENT = "too_recent"  # done within the grace period: Recall's webhook may still be on its way
    OUT_OF_SCOPE = "out_of_scope"  # metadata does not match, or older than the maximum age


@dataclass(frozen=True, slots=True)
class PipelineView:
    """What the pipeline has seen, read from its own topics (see :mod:`pipeline_cli.reconcile.view`)."""

    recording_done: frozenset[str] = frozenset()  # recording ids with a recording.done on recall.recording.events
    transcript_events: frozenset[tuple[str, str]] = frozenset()  # (transcript id, event) on recall.transcript.events
    ended: frozenset[str] = frozenset()  # recording ids on transcripts.ready or transcripts.failed


@dataclass(frozen=True, slots=True)
class Scope:
    """Which recordings this reconciler owns, and how patient it is."""

    metadata: Mapping[str, str] = field(default_factory=dict)
    max_age: timedelta = timedelta(days=3)
    grace: timedelta = timedelta(minutes=10)
    pipeline_prefix: str = "recall-pipeline"  # the transcriber's TRANSCRIBER_IDEMPOTENCY_PREFIX

    def key(self) -> str:
        """The watermark's key: one watermark per metadata filter (several teams, one workspace)."""
        pairs = ",".join(f"{name}={value}" for name, value in sorted(self.metadata.items()))
        return f"reconcile:{pairs}" if pairs else "reconcile:*"


@dataclass(frozen=True, slots=True)
class Synthesised:
    topic: str
    key: str
    event: str
    ce_id: str
    body: bytes
    recording_id: str
    transcript_id: str | None = None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ce_id(event: str, recording_id: str, transcript_id: str | None = None) -> str:
    """The same (event, recording, transcript) gives the same id in every run."""
    name = f"{event}|{recording_id}|{transcript_id or ''}"
    return f"reconciler-{uuid.uuid5(_NAMESPACE, name)}"


def _done_at(recording: RecordingArtifact) -> datetime | None:
    if recording.status is not None and recording.status.updated_at is not None:
        return recording.status.updated_at
    return recording.completed_at


def metadata_matches(recording: RecordingArtifact, wanted: Mapping[str, str]) -> bool:
    """Recall filters by metadata server-side; checked again here so a workspace's other teams are never touched."""
    have = recording.metadata_dict
    return all(name in have and str(have[name]) == value for name, value in wanted.items())


def judge_recording(recording: RecordingArtifact, view: PipelineView, scope: Scope, *, now: datetime) -> Verdict:
    if not metadata_matches(recording, scope.metadata):
        return Verdict.OUT_OF_SCOPE
    if recording.created_at is not None and recording.created_at < now - scope.max_age:
        return Verdict.OUT_OF_SCOPE
    if recording.id in view.ended:
        return Verdict.ENDED
    if not recording.is_done:
        return Verdict.NOT_DONE
    done_at = _done_at(recording)
    if done_at is not None and done_at > now - scope.grace:
        return Verdict.TOO_RECENT
    if recording.id in view.recording_done:
        return Verdict.CHECK_TRANSCRIPTS
    return Verdict.PUBLISH


def is_settled(recording: RecordingArtifact, verdict: Verdict) -> bool:
    """Settled: nothing a later run could still find to do (the watermark may pass it)."""
    if verdict in {Verdict.ENDED, Verdict.OUT_OF_SCOPE}:
        return True
    if verdict is Verdict.NOT_DONE:
        return recording.status is not None and recording.status.code in TERMINAL
    return False


def missing_transcript_events(
    recording: RecordingArtifact,
    transcripts: Iterable[TranscriptArtifact],
    view: PipelineView,
    scope: Scope,
    *,
    now: datetime,
) -> list[Synthesised]:
    """``transcript.done`` / ``transcript.failed`` for the pipeline's own finished transcripts of a recording that
    the pipeline never received (the transcriber tags each create with ``metadata.pipeline``)."""
    found: list[Synthesised] = []
    for transcript in transcripts:
        if transcript.metadata_dict.get("pipeline") != scope.pipeline_prefix:
            continue
        if transcript.status_code not in {"done", "failed"}:
            continue
        event = f"transcript.{transcript.status_code}"
        if (transcript.id, event) in view.transcript_events:
            continue
        updated = transcript.status.updated_at
        if updated is not None and updated > now - scope.grace:
            continue
        found.append(transcript_event(recording, transcript))
    return found


def query_start(*, now: datetime, watermark: datetime | None, overlap: timedelta, max_age: timedelta) -> datetime:
    """``created_at_after`` for this run: the watermark minus the safety overlap, never older than the maximum age
    (no watermark yet: the whole maximum age)."""
    oldest = now - max_age
    if watermark is None:
        return oldest
    return max(oldest, watermark - overlap)


def next_watermark(
    *, now: datetime, started_from: datetime, previous: datetime | None, unsettled: Iterable[datetime]
) -> datetime:
    """The oldest created_at still unsettled (a later run must look at it again), else the run's start; never
    backwards, never before where this run started looking."""
    pending = min(unsettled, default=now)
    candidate = max(min(pending, now), started_from)
    return max(candidate, previous) if previous is not None else candidate


def _bot(recording: RecordingArtifact) -> dict[str, Any] | None:
    if recording.bot is None:
        return None
    return {"id": recording.bot.id, "metadata": dict(recording.bot.metadata or {})}


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=False).encode()


def recording_done_event(recording: RecordingArtifact) -> Synthesised:
    """``recording.done`` as Recall's webhook would have carried it, from the List Recordings item."""
    done_at = _done_at(recording) or recording.created_at or datetime(1970, 1, 1, tzinfo=UTC)
    body = {
        "event": "recording.done",
        "data": {
            "data": {
                "code": "done",
                "sub_code": recording.status.sub_code if recording.status else None,
                "updated_at": _iso(done_at),
            },
            "recording": {"id": recording.id, "metadata": recording.metadata_dict},
            "bot": _bot(recording),
        },
    }
    return Synthesised(
        topic=RECORDING_EVENTS.name,
        key=recording.id,
        event="recording.done",
        ce_id=ce_id("recording.done", recording.id),
        body=_encode(body),
        recording_id=recording.id,
    )


def transcript_event(recording: RecordingArtifact, transcript: TranscriptArtifact) -> Synthesised:
    event = f"transcript.{transcript.status_code}"
    updated = transcript.status.updated_at or transcript.created_at or datetime(1970, 1, 1, tzinfo=UTC)
    body = {
        "event": event,
        "data": {
            "data": {"code": transcript.status_code, "sub_code": transcript.sub_code, "updated_at": _iso(updated)},
            "transcript": {"id": transcript.id, "metadata": transcript.metadata_dict},
            "recording": {"id": recording.id, "metadata": recording.metadata_dict},
            "bot": _bot(recording),
        },
    }
    return Synthesised(
        topic=TRANSCRIPT_EVENTS.name,
        key=recording.id,
        event=event,
        ce_id=ce_id(event, recording.id, transcript.id),
        body=_encode(body),
        recording_id=recording.id,
        transcript_id=transcript.id,
    )
