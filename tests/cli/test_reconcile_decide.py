"""The reconciler's pure decisions: which recordings to publish, which transcript events went missing, the
deterministic ce_id, and how the watermark moves."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline_cli.kafka import Record
from pipeline_cli.reconcile.decide import (
    PipelineView,
    Scope,
    Verdict,
    ce_id,
    is_settled,
    judge_recording,
    missing_transcript_events,
    next_watermark,
    query_start,
    recording_done_event,
)
from pipeline_cli.reconcile.view import view_of
from pipeline_common.recall.events import parse_webhook_event
from pipeline_common.recall.models import RecordingArtifact, TranscriptArtifact

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SCOPE = Scope(metadata={"team": "a"}, max_age=timedelta(days=3), grace=timedelta(minutes=10))


def recording(rid: str = "rec-1", *, status: str = "done", age: timedelta = timedelta(hours=1), **meta: str) -> Any:
    return RecordingArtifact.model_validate(
        {
            "id": rid,
            "created_at": (NOW - age).isoformat(),
            "status": {"code": status, "sub_code": None, "updated_at": (NOW - age + timedelta(minutes=30)).isoformat()},
            "metadata": meta or {"team": "a"},
            "bot": {"id": "bot-1", "metadata": {}},
        }
    )


def transcript(tid: str, status: str = "done", *, pipeline: str = "recall-pipeline", ago: float = 3600) -> Any:
    return TranscriptArtifact.model_validate(
        {
            "id": tid,
            "status": {"code": status, "sub_code": None, "updated_at": (NOW - timedelta(seconds=ago)).isoformat()},
            "metadata": {"pipeline": pipeline, "pipeline_attempt": "1"},
        }
    )


def test_a_done_recording_the_pipeline_never_saw_is_published() -> None:
    assert judge_recording(recording(), PipelineView(), SCOPE, now=NOW) is Verdict.PUBLISH


@pytest.mark.parametrize(
    ("view", "verdict"),
    [
        (PipelineView(ended=frozenset({"rec-1"})), Verdict.ENDED),
        (PipelineView(recording_done=frozenset({"rec-1"})), Verdict.CHECK_TRANSCRIPTS),
    ],
)
def test_a_recording_the_pipeline_knows_is_not_published_again(view: PipelineView, verdict: Verdict) -> None:
    assert judge_recording(recording(), view, SCOPE, now=NOW) is verdict


def test_out_of_scope_not_done_and_too_recent_recordings_are_left_alone() -> None:
    assert judge_recording(recording(team="b"), PipelineView(), SCOPE, now=NOW) is Verdict.OUT_OF_SCOPE
    assert judge_recording(recording(age=timedelta(days=4)), PipelineView(), SCOPE, now=NOW) is Verdict.OUT_OF_SCOPE
    assert judge_recording(recording(status="processing"), PipelineView(), SCOPE, now=NOW) is Verdict.NOT_DONE
    fresh = recording(age=timedelta(minutes=35))  # done 5 minutes ago: Recall's webhook may still come
    assert judge_recording(fresh, PipelineView(), SCOPE, now=NOW) is Verdict.TOO_RECENT


def test_only_the_pipelines_own_finished_transcripts_without_an_event_are_synthesised() -> None:
    rec = recording()
    view = PipelineView(
        recording_done=frozenset({"rec-1"}), transcript_events=frozenset({("t-seen", "transcript.done")})
    )
    transcripts = [
        transcript("t-lost"),
        transcript("t-failed-lost", "failed"),
        transcript("t-seen"),
        transcript("t-foreign", pipeline="someone-else"),
        transcript("t-processing", "processing"),
        transcript("t-fresh", ago=60),
    ]
    found = missing_transcript_events(rec, transcripts, view, SCOPE, now=NOW)
    assert [(a.event, a.transcript_id) for a in found] == [
        ("transcript.done", "t-lost"),
        ("transcript.failed", "t-failed-lost"),
    ]
    body = parse_webhook_event(found[0].body)
    assert (body.event, body.transcript_id, body.recording_id) == ("transcript.done", "t-lost", "rec-1")
    assert body.transcript_metadata["pipeline"] == "recall-pipeline"


def test_synthesised_recording_done_is_shaped_like_recalls_webhook_with_a_deterministic_id() -> None:
    first, second = recording_done_event(recording()), recording_done_event(recording())
    assert first.ce_id == second.ce_id == ce_id("recording.done", "rec-1")
    assert first.body == second.body
    event = parse_webhook_event(first.body)
    assert (event.event, event.recording_id, event.bot_id, event.code) == ("recording.done", "rec-1", "bot-1", "done")
    assert event.recording_metadata == {"team": "a"}
    assert ce_id("recording.done", "rec-2") != first.ce_id
    assert ce_id("transcript.done", "rec-1", "t") != ce_id("transcript.done", "rec-1", "u")


def test_the_query_starts_at_the_watermark_minus_the_overlap_bounded_by_the_maximum_age() -> None:
    overlap, max_age = timedelta(hours=2), timedelta(days=3)
    assert query_start(now=NOW, watermark=None, overlap=overlap, max_age=max_age) == NOW - max_age
    mark = NOW - timedelta(hours=5)
    assert query_start(now=NOW, watermark=mark, overlap=overlap, max_age=max_age) == mark - overlap
    ancient = NOW - timedelta(days=30)
    assert query_start(now=NOW, watermark=ancient, overlap=overlap, max_age=max_age) == NOW - max_age


def test_the_watermark_stops_at_the_oldest_unsettled_recording_and_never_goes_back() -> None:
    start = NOW - timedelta(days=1)
    held = NOW - timedelta(hours=6)
    assert next_watermark(now=NOW, started_from=start, previous=None, unsettled=[held, NOW]) == held
    assert next_watermark(now=NOW, started_from=start, previous=None, unsettled=[]) == NOW
    later = NOW - timedelta(hours=1)
    assert next_watermark(now=NOW, started_from=start, previous=later, unsettled=[held]) == later


def test_settled_means_nothing_left_to_find() -> None:
    assert is_settled(recording(), Verdict.ENDED)
    assert is_settled(recording(status="failed"), Verdict.NOT_DONE)
    assert not is_settled(recording(status="processing"), Verdict.NOT_DONE)
    for verdict in (Verdict.PUBLISH, Verdict.CHECK_TRANSCRIPTS, Verdict.TOO_RECENT):
        assert not is_settled(recording(), verdict)


def _record(topic: str, key: str, value: dict[str, Any], ce_type: str | None = None) -> Record:
    headers = (("ce_type", ce_type.encode()),) if ce_type else ()
    return Record(topic, 0, 0, 0, key.encode(), json.dumps(value).encode(), headers)


def test_the_view_is_read_from_the_pipelines_topics() -> None:
    view = view_of(
        [
            _record("recall.recording.events", "r1", {"event": "recording.done"}, "recording.done"),
            _record("recall.recording.events", "r2", {"event": "recording.processing"}),
            _record(
                "recall.transcript.events", "r3", {"event": "transcript.done", "data": {"transcript": {"id": "t3"}}}
            ),
            _record("transcripts.ready", "r4", {}),
            _record("transcripts.failed", "r5", {}),
            Record("recall.transcript.events", 0, 1, 0, b"r6", b"not json", ()),
        ]
    )
    assert view.recording_done == {"r1"}
    assert view.transcript_events == {("t3", "transcript.done")}
    assert view.ended == {"r4", "r5"}


def test_a_scope_key_names_its_metadata_filter() -> None:
    assert Scope().key() == "reconcile:*"
    assert Scope(metadata={"b": "2", "a": "1"}).key() == "reconcile:a=1,b=2"
