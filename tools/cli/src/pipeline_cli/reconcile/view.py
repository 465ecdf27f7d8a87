"""The read model: what the pipeline has seen, built from its own topics (no second database).

- ``recall.recording.events``: recording ids with a ``recording.done`` (Recall's, or one this reconciler published);
- ``recall.transcript.events``: (transcript id, event) pairs, so a missing ``transcript.done`` can be told apart;
- ``transcripts.ready`` and ``transcripts.failed``: recording ids the pipeline has finished with.

Read as a snapshot from the beginning to the end offsets as of the start of the run, without a consumer group. The
topics' retention bounds what is remembered (7 days for the Recall events, 30 for the announcements): a recording
older than that looks unknown, and its synthesised ``recording.done`` is absorbed by the transcriber's own state (its
compacted changelog remembers every recording it finished), so it is never transcribed twice.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from typing import Any

from pipeline_cli.kafka import Record
from pipeline_cli.reconcile.decide import PipelineView
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIPT_EVENTS, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY

TOPICS = (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name)


def _body(record: Record) -> dict[str, Any]:
    try:
        value = json.loads(record.value or b"null")
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _event(record: Record, body: dict[str, Any] | None = None) -> str | None:
    declared = record.header("ce_type")
    if declared:
        return declared
    event = (body if body is not None else _body(record)).get("event")
    return event if isinstance(event, str) else None


def _transcript_id(body: dict[str, Any]) -> str | None:
    data = body.get("data")
    transcript = data.get("transcript") if isinstance(data, dict) else None
    value = transcript.get("id") if isinstance(transcript, dict) else None
    return value if isinstance(value, str) else None


class ViewBuilder:
    """Folds records of :data:`TOPICS` into a :class:`PipelineView` (any order; a record it cannot read is skipped)."""

    def __init__(self) -> None:
        self.recording_done: set[str] = set()
        self.transcript_events: set[tuple[str, str]] = set()
        self.ended: set[str] = set()
        self.records = 0

    def add(self, record: Record) -> None:
        self.records += 1
        key = record.key_text
        if not key:
            return
        if record.topic == RECORDING_EVENTS.name:
            if _event(record) == "recording.done":
                self.recording_done.add(key)
        elif record.topic == TRANSCRIPT_EVENTS.name:
            body = _body(record)
            event, transcript_id = _event(record, body), _transcript_id(body)
            if event and transcript_id:
                self.transcript_events.add((transcript_id, event))
        elif record.topic in {TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name}:
            self.ended.add(key)

    def build(self) -> PipelineView:
        return PipelineView(
            recording_done=frozenset(self.recording_done),
            transcript_events=frozenset(self.transcript_events),
            ended=frozenset(self.ended),
        )


def view_of(records: Iterable[Record]) -> PipelineView:
    builder = ViewBuilder()
    for record in records:
        builder.add(record)
    return builder.build()


async def read_view(records: AsyncIterator[Record]) -> PipelineView:
    builder = ViewBuilder()
    async for record in records:
        builder.add(record)
    return builder.build()
