"""What each topic carries: one :class:`~devkit.docs.model.MessageDoc` per topic of the registry."""

from __future__ import annotations

import re
from typing import Any, Final

from devkit.docs.examples import (
    _EXAMPLE_BOT,
    _EXAMPLE_RECORDING,
    _EXAMPLE_TRANSCRIPT,
    _example,
    example_failed,
    example_ready,
    example_webhook,
)
from devkit.docs.model import COMPONENT_REF, MessageDoc
from pipeline_common.contracts import FAILED_EVENT_TYPE, READY_EVENT_TYPE
from pipeline_common.recall.events import EVENT_NAME_PATTERN
from pipeline_common.topics import (
    BOT_EVENTS,
    DLQ_SERVICES,
    OTHER_EVENTS,
    RECORDING_EVENTS,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
    TopicSpec,
    dlq_topic,
)

_INGEST_SOURCE: Final = "https://recall.ai/webhooks"
_RECALL_CE_ID: Final = "the webhook-id of the Recall delivery: every retry of one delivery carries the same id"


def _webhook_message(name: str, title: str, family: str | None, example_event: str) -> MessageDoc:
    ce_type: dict[str, Any] = {
        "type": "string",
        "description": "the Recall event name",
        "pattern": f"^{re.escape(family)}\\." if family else EVENT_NAME_PATTERN,
        "examples": [example_event],
    }
    return MessageDoc(
        name=name,
        title=title,
        payload={"$ref": COMPONENT_REF.format(model="WebhookEvent")},
        ce_type=ce_type,
        ce_source=f"the ingest's INGEST_EVENT_SOURCE, by default {_INGEST_SOURCE}",
        ce_id=_RECALL_CE_ID,
        ce_subject="the message key" + ("" if family else " (absent when the event has no recording and no bot)"),
        subject_required=family is not None,
        examples=(
            _example(
                example_webhook(example_event),
                name=example_event.replace(".", "-"),
                summary=f"a {example_event} webhook, as Recall sent it",
                ce_type=example_event,
                ce_id="msg_2tLx4kZ8sQeB7vYc1fR0aP9mNd3",
                source=_INGEST_SOURCE,
                subject=_EXAMPLE_BOT if family == "bot" else _EXAMPLE_RECORDING,
            ),
        ),
    )


def _event_message(
    model: str,
    title: str,
    ce_type: str,
    source: str,
    ce_id_doc: str,
    example: dict[str, Any],
    example_name_and_summary: tuple[str, str],
    example_ce_id: str,
) -> MessageDoc:
    """One of the pipeline's own public events (its payload one of the contract models)."""
    name, summary = example_name_and_summary
    return MessageDoc(
        name=model,
        title=title,
        payload={"$ref": COMPONENT_REF.format(model=model)},
        ce_type={"type": "string", "const": ce_type},
        ce_source=source,
        ce_id=ce_id_doc,
        examples=(
            _example(
                example,
                name=name,
                summary=summary,
                ce_type=ce_type,
                ce_id=example_ce_id,
                source=source,
                subject=_EXAMPLE_RECORDING,
            ),
        ),
    )


def _contract_messages() -> dict[str, MessageDoc]:
    return {
        RECORDING_EVENTS.name: _webhook_message(
            "RecordingEvent", "Recall recording status", "recording", "recording.done"
        ),
        TRANSCRIPT_EVENTS.name: _webhook_message(
            "TranscriptEvent", "Recall transcript status", "transcript", "transcript.done"
        ),
        BOT_EVENTS.name: _webhook_message("BotEvent", "Recall bot status", "bot", "bot.done"),
        OTHER_EVENTS.name: _webhook_message("OtherRecallEvent", "Any other Recall event", None, "audio_mixed.done"),
        TRANSCRIPTS_READY.name: _event_message(
            "TranscriptReady",
            "Transcript ready",
            READY_EVENT_TYPE,
            "urn:recall-pipeline:fetcher",
            "unique per transcript; a re-announcement of the same transcript carries the same id",
            example_ready().model_dump(mode="json"),
            ("ready", "a one-hour meeting transcribed by the primary provider"),
            f"transcript-ready:{_EXAMPLE_TRANSCRIPT}",
        ),
        TRANSCRIPTS_FAILED.name: _event_message(
            "TranscriptFailed",
            "Transcript failed",
            FAILED_EVENT_TYPE,
            "urn:recall-pipeline:transcriber",
            "deterministic per recording (transcript-failed:<recording id>): a re-emission carries the same id",
            example_failed().model_dump(mode="json"),
            ("providers-exhausted", "every provider of the chain failed"),
            f"transcript-failed:{_EXAMPLE_RECORDING}",
        ),
    }


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def message_for(spec: TopicSpec) -> MessageDoc:
    """The message documentation of a registry topic: a public event, a dead letter, or an internal record."""
    known = _contract_messages()
    if spec.name in known:
        return known[spec.name]
    if spec.name in {dlq_topic(service).name for service in DLQ_SERVICES}:
        return MessageDoc(
            name=f"{_camel(spec.produced_by[0])}DeadLetter",
            title=f"Dead letter of the {spec.produced_by[0]}",
            payload={"description": "the original message value, byte for byte (usually JSON, not always)"},
            ce_type=None,
            dead_letter=True,
            public=False,
        )
    return MessageDoc(
        name=f"{_camel(spec.name)}Record",
        title=spec.description.removeprefix("Internal: ").rstrip("."),
        payload={"description": f"{spec.value}; internal to the pipeline, no compatibility promise"},
        ce_type=None,
        public=False,
    )
