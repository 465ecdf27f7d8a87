"""One reconciliation (or backfill) pass: walk List Recordings over a window, judge each recording against the
pipeline's view, look up the transcripts of recordings still in flight, publish what is missing, count everything.

Recall's list limit (about 60 a minute per workspace) is shared by List Recordings and List Transcripts, so both go
through one :class:`~pipeline_common.recall.paging.ListPacer`. Publishing has its own pacer (backfill): at most
``per_minute`` synthesised events a minute, so the transcriber's partitions never hold more than a short queue of
backfilled recordings in front of live ones.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pipeline_cli.reconcile.decide import (
    PipelineView,
    Scope,
    Synthesised,
    Verdict,
    is_settled,
    judge_recording,
    missing_transcript_events,
    recording_done_event,
)
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.listing import RecordingFilter, iter_recordings
from pipeline_common.recall.paging import ListPacer

Publish = Callable[[Synthesised], Awaitable[None]]
OnRecording = Callable[[str, Verdict, int], None]


@dataclass
class Summary:
    seen: int = 0
    already_known: int = 0
    published: int = 0
    recordings_published: int = 0
    transcripts_published: int = 0
    too_recent: int = 0
    not_done: int = 0
    out_of_scope: int = 0
    list_calls: int = 0
    actions: list[Synthesised] = field(default_factory=list)
    unsettled: list[datetime] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {
            "seen": self.seen,
            "already_known": self.already_known,
            "published": self.published,
            "recordings_published": self.recordings_published,
            "transcripts_published": self.transcripts_published,
            "too_recent": self.too_recent,
            "not_done": self.not_done,
            "out_of_scope": self.out_of_scope,
            "list_calls": self.list_calls,
        }


async def reconcile_window(
    recall: RecallClient,
    view: PipelineView,
    scope: Scope,
    *,
    created_after: datetime,
    created_before: datetime | None,
    now: datetime,
    list_pacer: ListPacer,
    publish: Publish | None,
    publish_pacer: ListPacer | None = None,
    on_recording: OnRecording | None = None,
) -> Summary:
    """``publish`` None is a dry run: every action is decided and listed in ``Summary.actions``, nothing written."""
    summary = Summary()
    query = RecordingFilter(
        created_at_after=created_after, created_at_before=created_before, metadata=dict(scope.metadata)
    )

    async def emit(action: Synthesised) -> None:
        summary.actions.append(action)
        if publish is not None:
            if publish_pacer is not None:
                await publish_pacer.wait()
            await publish(action)
        summary.published += 1
        if action.transcript_id is None:
            summary.recordings_published += 1
        else:
            summary.transcripts_published += 1

    async for recording in iter_recordings(recall, query, pacer=list_pacer):
        summary.seen += 1
        verdict = judge_recording(recording, view, scope, now=now)
        published_before = summary.published
        if verdict is Verdict.PUBLISH:
            await emit(recording_done_event(recording))
        elif verdict is Verdict.CHECK_TRANSCRIPTS:
            transcripts = [t async for t in recall.iter_transcripts(list_pacer=list_pacer, recording_id=recording.id)]
            missing = missing_transcript_events(recording, transcripts, view, scope, now=now)
            for action in missing:
                await emit(action)
            if not missing:
                summary.already_known += 1
        elif verdict is Verdict.ENDED:
            summary.already_known += 1
        elif verdict is Verdict.TOO_RECENT:
            summary.too_recent += 1
        elif verdict is Verdict.NOT_DONE:
            summary.not_done += 1
        else:
            summary.out_of_scope += 1
        if not is_settled(recording, verdict) and recording.created_at is not None:
            summary.unsettled.append(recording.created_at)
        if on_recording is not None:
            on_recording(recording.id, verdict, summary.published - published_before)
    summary.list_calls = list_pacer.calls
    return summary
