"""One line per record, for people (``describe``) or for programs (``as_json``)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from pipeline_cli.kafka import Record
from pipeline_common.contracts import TranscriptFailed, TranscriptReady
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.events import parse_webhook_event
from pipeline_common.topics import TRANSCRIPTS_FAILED, TRANSCRIPTS_READY


def _time(record: Record) -> str:
    return record.time.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _fields(**values: Any) -> str:
    return " ".join(f"{name}={value}" for name, value in values.items() if value is not None and value != "")


def ready_details(event: TranscriptReady) -> str:
    return _fields(
        recording=event.recording_id,
        transcript=event.transcript_id,
        provider=event.provider,
        attempt=event.attempt,
        words=event.word_count,
        speakers=len(event.participants) or None,
        languages=",".join(event.language_codes) or None,
        raw=event.raw.uri,
    )


def failed_details(event: TranscriptFailed) -> str:
    tried = ",".join(
        f"{attempt.provider}:{attempt.sub_code or attempt.http_status or attempt.outcome}" for attempt in event.attempts
    )
    return _fields(recording=event.recording_id, reason=event.reason.value, attempts=len(event.attempts), tried=tried)


def details(record: Record) -> str:
    """What a record says, in a few ``name=value`` fields; never raises (a bad record says why)."""
    if record.value is None:
        return "(no value: a tombstone)"
    try:
        if record.topic == TRANSCRIPTS_READY.name:
            return ready_details(TranscriptReady.model_validate_json(record.value))
        if record.topic == TRANSCRIPTS_FAILED.name:
            return failed_details(TranscriptFailed.model_validate_json(record.value))
        event = parse_webhook_event(record.value, max_bytes=None)
    except ValidationError as error:
        return f"(not a valid event: {error.error_count()} validation error(s), first at {_location(error)})"
    except InvalidRecallPayload as error:
        return f"(not a Recall event: {error})"
    return _fields(
        event=event.event,
        code=event.code,
        sub_code=event.sub_code,
        transcript=event.transcript_id,
        bot=event.bot_id,
        updated_at=event.updated_at.isoformat() if event.updated_at else None,
    )


def _location(error: ValidationError) -> str:
    first = error.errors(include_url=False, include_input=False)[0]
    return ".".join(str(part) for part in first["loc"]) or "(root)"


def describe(record: Record, *, topic_width: int = 24) -> str:
    """``<time>  <topic>  <partition>@<offset>  <ce_type>  <details>``."""
    where = f"{record.partition}@{record.offset}"
    kind = record.header("ce_type") or "-"
    return f"{_time(record)}  {record.topic:<{topic_width}}  {where:<7}  {kind}  {details(record)}"


def tail_line(record: Record) -> str:
    """``<time>  <details>`` for a transcripts.ready record."""
    return f"{_time(record)}  {details(record)}"


def as_json(record: Record) -> str:
    """The record as one JSON object: value parsed when it is JSON, headers decoded as UTF-8."""
    value: Any = None
    if record.value is not None:
        try:
            value = json.loads(record.value)
        except ValueError:
            value = record.value.decode("utf-8", "replace")
    return json.dumps(
        {
            "topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "timestamp": _time(record),
            "key": record.key_text,
            "headers": {name: value.decode("utf-8", "replace") for name, value in record.headers},
            "value": value,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
