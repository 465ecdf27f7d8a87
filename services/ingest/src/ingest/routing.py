"""Which topic a verified Recall event goes to, and under which key (docs/architecture.md, "Kafka contract")."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_common import topics
from pipeline_common.recall.events import WebhookEvent

_TOPIC_BY_FAMILY = {
    "recording": topics.RECORDING_EVENTS.name,
    "transcript": topics.TRANSCRIPT_EVENTS.name,
    "bot": topics.BOT_EVENTS.name,
}
#: Every topic ingest writes to: readiness waits until all of them exist.
ROUTED_TOPICS = (*_TOPIC_BY_FAMILY.values(), topics.OTHER_EVENTS.name)


@dataclass(frozen=True, slots=True)
class Route:
    topic: str
    key: str | None


def route(event: WebhookEvent) -> Route:
    """Recording and transcript events by recording id, bot events by bot id, the rest to the "other" topic keyed by
    recording id, else bot id, else no key."""
    topic = _TOPIC_BY_FAMILY.get(event.family, topics.OTHER_EVENTS.name)
    if event.family == "bot":
        return Route(topic, event.bot_id)
    return Route(topic, event.recording_id or event.bot_id)
