from __future__ import annotations

import json

import pytest

from ingest.routing import ROUTED_TOPICS, Route, route
from pipeline_common.recall.events import parse_webhook_event
from tests.common.recall.examples import example

pytestmark = pytest.mark.unit


def event(name: str, **data: object) -> bytes:
    status = {"code": name.split(".")[1], "sub_code": None, "updated_at": "2024-12-04T23:25:56.339940Z"}
    return json.dumps({"event": name, "data": {"data": status, **data}}).encode()


REC = {"id": "rec-1", "metadata": {}}
BOT = {"id": "bot-1", "metadata": {}}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (event("recording.done", recording=REC, bot=BOT), Route("recall.recording.events", "rec-1")),
        (event("recording.failed", recording=REC, bot=None), Route("recall.recording.events", "rec-1")),
        (
            event("transcript.failed", recording=REC, transcript={"id": "t", "metadata": {}}, bot=BOT),
            Route("recall.transcript.events", "rec-1"),
        ),
        (event("bot.in_call_recording", bot=BOT), Route("recall.bot.events", "bot-1")),
        (
            event("audio_mixed.done", recording=REC, audio_mixed={"id": "a"}, bot=BOT),
            Route("recall.other.events", "rec-1"),
        ),
        (event("participant_events.done", bot=BOT), Route("recall.other.events", "bot-1")),
        (event("calendar.sync_events"), Route("recall.other.events", None)),
    ],
)
def test_routes_by_event_family_and_keys_by_recording_then_bot(body: bytes, expected: Route) -> None:
    assert route(parse_webhook_event(body)) == expected


def test_recalls_documented_example_routes_to_the_transcript_topic() -> None:
    documented = parse_webhook_event(example("webhook-transcript.done.json"))
    assert route(documented) == Route("recall.transcript.events", "03d06804-0cb2-42f8-a255-5b950dde7c57")


def test_every_routed_topic_is_in_the_registry() -> None:
    from pipeline_common.topics import REGISTRY

    assert set(ROUTED_TOPICS) <= {spec.name for spec in REGISTRY}
