"""CloudEvents 1.0 attributes as Kafka headers, in the Kafka protocol binding's binary content mode.

In binary mode the message value is the event data as is, and each attribute travels as a header named ``ce_<name>``
(UTF-8 value); the data's media type travels as ``content-type``. For Recall events ``id`` is the ``webhook-id`` so
that every retry of one delivery carries the same id, and ``type`` is the Recall event name. A W3C ``traceparent``
header rides along when the producer had one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

SPEC_VERSION: Final = "1.0"
CONTENT_TYPE_HEADER: Final = "content-type"
TRACEPARENT_HEADER: Final = "traceparent"
_PREFIX: Final = "ce_"
_REQUIRED: Final = ("specversion", "id", "source", "type")
# W3C Trace Context: version-traceid-parentid-flags, lowercase hex, trace and parent ids not all zero.
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$")

KafkaHeaders = list[tuple[str, bytes]]


class CloudEventHeaderError(ValueError):
    """Kafka headers that do not carry a valid CloudEvent."""


@dataclass(frozen=True, slots=True)
class CloudEventAttributes:
    id: str
    source: str
    type: str
    time: datetime | None = None
    subject: str | None = None
    datacontenttype: str | None = "application/json"
    traceparent: str | None = None
    specversion: str = SPEC_VERSION
    extensions: dict[str, str] = field(default_factory=dict)


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix, as CloudEvents recommends."""
    if moment.tzinfo is None:
        raise CloudEventHeaderError("ce_time needs a timezone-aware datetime")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def valid_traceparent(value: str | None) -> str | None:
    """The traceparent if it is well formed, else None (a malformed one is dropped rather than propagated)."""
    if value is None:
        return None
    candidate = value.strip().lower()
    return candidate if _TRACEPARENT.match(candidate) else None


def build_headers(attributes: CloudEventAttributes) -> KafkaHeaders:
    """Kafka headers for one event, in a stable order."""
    for name in ("id", "source", "type"):
        if not getattr(attributes, name):
            raise CloudEventHeaderError(f"ce_{name} must not be empty")
    headers: KafkaHeaders = [
        ("ce_specversion", attributes.specversion.encode()),
        ("ce_id", attributes.id.encode()),
        ("ce_source", attributes.source.encode()),
        ("ce_type", attributes.type.encode()),
    ]
    if attributes.time is not None:
        headers.append(("ce_time", format_time(attributes.time).encode()))
    if attributes.subject is not None:
        headers.append(("ce_subject", attributes.subject.encode()))
    for name, value in sorted(attributes.extensions.items()):
        headers.append((f"{_PREFIX}{name}", value.encode()))
    if attributes.datacontenttype is not None:
        headers.append((CONTENT_TYPE_HEADER, attributes.datacontenttype.encode()))
    traceparent = valid_traceparent(attributes.traceparent)
    if traceparent is not None:
        headers.append((TRACEPARENT_HEADER, traceparent.encode()))
    return headers


def _decode(name: str, raw: bytes | None) -> str:
    if raw is None:
        raise CloudEventHeaderError(f"header {name} has no value")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CloudEventHeaderError(f"header {name} is not UTF-8") from None


def parse_headers(headers: Iterable[tuple[str, bytes | None]] | None) -> CloudEventAttributes:
    """The CloudEvent attributes carried by a Kafka message's headers; CloudEventHeaderError when they are invalid."""
    attributes: dict[str, str] = {}
    content_type: str | None = None
    traceparent: str | None = None
    for name, raw in headers or ():
        lowered = name.lower()
        if lowered.startswith(_PREFIX):
            attributes[lowered.removeprefix(_PREFIX)] = _decode(name, raw)
        elif lowered == CONTENT_TYPE_HEADER:
            content_type = _decode(name, raw)
        elif lowered == TRACEPARENT_HEADER:
            traceparent = valid_traceparent(_decode(name, raw))
    missing = [f"ce_{name}" for name in _REQUIRED if not attributes.get(name)]
    if missing:
        raise CloudEventHeaderError(f"missing CloudEvents header(s): {', '.join(missing)}")
    if attributes["specversion"] != SPEC_VERSION:
        raise CloudEventHeaderError(f"unsupported ce_specversion {attributes['specversion']!r}")
    time: datetime | None = None
    if "time" in attributes:
        try:
            time = datetime.fromisoformat(attributes["time"].replace("Z", "+00:00"))
        except ValueError:
            raise CloudEventHeaderError("ce_time is not an RFC 3339 timestamp") from None
        if time.tzinfo is None:
            raise CloudEventHeaderError("ce_time has no timezone")
    known = {"specversion", "id", "source", "type", "time", "subject"}
    return CloudEventAttributes(
        id=attributes["id"],
        source=attributes["source"],
        type=attributes["type"],
        time=time,
        subject=attributes.get("subject"),
        datacontenttype=content_type,
        traceparent=traceparent,
        specversion=attributes["specversion"],
        extensions={name: value for name, value in attributes.items() if name not in known},
    )


def header_value(headers: Sequence[tuple[str, bytes | None]] | None, name: str) -> bytes | None:
    """The value of the first header called ``name`` (case-insensitive), or None."""
    wanted = name.lower()
    for key, value in headers or ():
        if key.lower() == wanted:
            return value
    return None
