"""Which topic a verified Recall event goes to, and under which key (docs/architecture.md, "Kafka contract").

A body that verifies and is a JSON object is always routed: Recall retries anything but a 2xx for about a day, and
an endpoint that keeps failing can be disabled. Events the pipeline acts on are parsed strictly by their consumers;
here a shape we do not recognise only changes the topic (``recall.other.events``) and the key (whatever id it has).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from pipeline_common import topics
from pipeline_common.recall.events import InvalidRecallPayload, WebhookEvent, parse_webhook_event

_TOPIC_BY_FAMILY = {
    "recording": topics.RECORDING_EVENTS.name,
    "transcript": topics.TRANSCRIPT_EVENTS.name,
    "bot": topics.BOT_EVENTS.name,
}
#: Every topic ingest writes to: readiness waits until all of them exist.
ROUTED_TOPICS = (*_TOPIC_BY_FAMILY.values(), topics.OTHER_EVENTS.name)
#: The CloudEvents type of a body whose ``event`` is missing or not an event name.
UNKNOWN_EVENT_TYPE: Final = "recall.unknown"
_EVENT_TYPE: Final = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_MAX_KEY_CHARS: Final = 256


class NotAJsonObject(ValueError):
    """The (verified) body is not a JSON object: not something Recall sends."""


@dataclass(frozen=True, slots=True)
class Route:
    topic: str
    key: str | None


@dataclass(frozen=True, slots=True)
class RoutedBody:
    route: Route
    event_type: str
    recognised: bool  # the body is the documented shape of its family


def route(event: WebhookEvent) -> Route:
    """Recording and transcript events by recording id, bot events by bot id, the rest to the "other" topic keyed by
    recording id, else bot id, else no key."""
    topic = _TOPIC_BY_FAMILY.get(event.family, topics.OTHER_EVENTS.name)
    if event.family == "bot":
        return Route(topic, event.bot_id)
    return Route(topic, event.recording_id or event.bot_id)


def route_body(body: bytes) -> RoutedBody:
    """Route a verified body; :class:`NotAJsonObject` only when it is not a JSON object at all."""
    try:
        event = parse_webhook_event(body, max_bytes=None)
    except InvalidRecallPayload:
        pass
    else:
        return RoutedBody(route(event), event.event, recognised=True)
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        raise NotAJsonObject("body is not valid JSON") from None
    if not isinstance(value, dict):
        raise NotAJsonObject("body must be a JSON object")
    name = value.get("event")
    event_type = name if isinstance(name, str) and _EVENT_TYPE.fullmatch(name) else UNKNOWN_EVENT_TYPE
    data = value.get("data")
    data = data if isinstance(data, dict) else {}
    recording_id = _id(data.get("recording"), "id") or _id(data, "recording_id")
    bot_id = _id(data.get("bot"), "id") or _id(data, "bot_id")
    if event_type.split(".", 1)[0] == "bot" and bot_id is not None:
        return RoutedBody(Route(topics.BOT_EVENTS.name, bot_id), event_type, recognised=False)
    return RoutedBody(Route(topics.OTHER_EVENTS.name, recording_id or bot_id), event_type, recognised=False)


def _id(container: Any, field: str) -> str | None:
    value = container.get(field) if isinstance(container, dict) else None
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_KEY_CHARS or not value.isprintable():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate from a \ud800 escape
        return None
    return value
