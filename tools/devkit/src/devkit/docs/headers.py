"""The Kafka headers of each message: CloudEvents binary-mode attributes and the dead-letter headers."""

from __future__ import annotations

from typing import Any

from devkit.docs.examples import _EXAMPLE_TIME, _EXAMPLE_TRACEPARENT
from devkit.docs.model import _RFC3339, _TRACEPARENT_PATTERN, MessageDoc
from pipeline_common.cloudevents import (
    CONTENT_TYPE_HEADER,
    SPEC_VERSION,
    TRACEPARENT_HEADER,
    CloudEventAttributes,
    build_headers,
)
from pipeline_common.dlq import dlq_headers


def cloudevents_header_names() -> list[str]:
    """Every header :func:`~pipeline_common.cloudevents.build_headers` can write, in its order."""
    everything = CloudEventAttributes(
        id="i", source="s", type="t", time=_EXAMPLE_TIME, subject="k", traceparent=_EXAMPLE_TRACEPARENT
    )
    return [name for name, _ in build_headers(everything)]


def dlq_header_names() -> list[str]:
    """The headers :func:`~pipeline_common.dlq.dlq_headers` adds to a dead letter, in its order."""
    added = dlq_headers([], reason="r", service="s", topic="t", partition=0, offset=0, failed_at=_EXAMPLE_TIME)
    return [name for name, _ in added]


def cloudevents_headers(doc: MessageDoc) -> dict[str, Any]:
    assert doc.ce_type is not None
    properties: dict[str, dict[str, Any]] = {
        "ce_specversion": {"type": "string", "const": SPEC_VERSION, "description": "CloudEvents version"},
        "ce_id": {"type": "string", "minLength": 1, "description": f"event id: {doc.ce_id}; dedupe on it"},
        "ce_source": {"type": "string", "minLength": 1, "description": f"who produced it: {doc.ce_source}"},
        "ce_type": {**doc.ce_type, "description": doc.ce_type.get("description", "the event type")},
        "ce_time": {**_RFC3339, "description": "when it happened (RFC 3339, UTC)"},
        "ce_subject": {"type": "string", "description": f"what it is about: {doc.ce_subject}"},
        CONTENT_TYPE_HEADER: {"type": "string", "const": "application/json", "description": "media type of the value"},
        TRACEPARENT_HEADER: {
            "type": "string",
            "pattern": _TRACEPARENT_PATTERN,
            "description": "W3C Trace Context, carried through when the producer had one",
        },
    }
    missing = set(cloudevents_header_names()) - set(properties)
    if missing:  # a header cloudevents.py writes that this module does not document yet
        raise RuntimeError(f"undocumented CloudEvents header(s): {sorted(missing)}")
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", CONTENT_TYPE_HEADER]
    if doc.subject_required:
        required.append("ce_subject")
    return {
        "type": "object",
        "description": "CloudEvents 1.0, Kafka protocol binding, binary content mode: the value is the event data, "
        "each attribute is a ce_<name> header (UTF-8).",
        "properties": properties,
        "required": sorted(required),
    }


def dead_letter_headers() -> dict[str, Any]:
    described: dict[str, dict[str, Any]] = {
        "dlq-reason": {"type": "string", "description": "why the consumer gave up (at most 2000 bytes)"},
        "dlq-service": {"type": "string", "description": "the consumer that dead-lettered it"},
        "dlq-source-topic": {"type": "string", "description": "the topic it came from: where a replay sends it"},
        "dlq-source-partition": {"type": "string", "pattern": "^[0-9]+$", "description": "its partition there"},
        "dlq-source-offset": {"type": "string", "pattern": "^[0-9]+$", "description": "its offset there"},
        "dlq-failed-at": {**_RFC3339, "description": "when it was dead-lettered (RFC 3339, UTC)"},
    }
    names = dlq_header_names()
    if set(names) != set(described):
        raise RuntimeError(f"dlq headers changed: documented {sorted(described)}, written {sorted(names)}")
    return {
        "type": "object",
        "description": "The original headers (CloudEvents and traceparent included) followed by the dlq-* headers. "
        "`recall-pipeline dlq replay` sends the record back to dlq-source-topic with the original headers only.",
        "properties": described,
        "required": names,
    }
