"""Issue 14 item 2: a verified JSON object is always accepted and routed; only its consumers parse it strictly."""

from __future__ import annotations

import json

import pytest

from ingest.routing import NotAJsonObject, Route, route_body

pytestmark = pytest.mark.unit

STATUS = {"code": "joining_call", "sub_code": None, "updated_at": "2024-12-04T23:25:56.339940Z"}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        # Recall's v1.10 bot status change: data.bot_id and data.status, no data.bot.
        (
            {"event": "bot.status_change", "data": {"bot_id": "bot-7", "status": {"code": "done", "sub_code": None}}},
            Route("recall.bot.events", "bot-7"),
        ),
        # Call events carry data.bot_id too.
        (
            {"event": "bot.participant_join", "data": {"bot_id": "bot-8", "data": {"participant": {"id": 1}}}},
            Route("recall.bot.events", "bot-8"),
        ),
        # A recording.* event missing what the transcriber relies on is not refused: it goes to "other".
        ({"event": "recording.done", "data": {"recording": {"id": "r-2"}}}, Route("recall.other.events", "r-2")),
        ({"event": "recording.done", "data": {"recording_id": "r-3"}}, Route("recall.other.events", "r-3")),
        ({"hello": "world"}, Route("recall.other.events", None)),
        ({"event": 5, "data": []}, Route("recall.other.events", None)),
        ({"event": "x", "data": {"bot_id": "b" * 300}}, Route("recall.other.events", None)),
        ({"event": "bot.done", "data": {"bot": {"id": "bot-9", "metadata": {}}, "data": STATUS}}, None),
    ],
)
def test_every_verified_json_object_is_routed(payload: dict[str, object], expected: Route | None) -> None:
    routed = route_body(json.dumps(payload).encode())
    if expected is None:
        expected = Route("recall.bot.events", "bot-9")
    assert routed.route == expected
    assert routed.event_type


def test_the_event_type_is_the_event_name_when_it_is_one() -> None:
    assert route_body(b'{"event": "bot.status_change", "data": {"bot_id": "b"}}').event_type == "bot.status_change"
    assert route_body(b'{"event": "\\u0000 nonsense"}').event_type == "recall.unknown"


@pytest.mark.parametrize("body", [b"", b"<xml/>", b"[1, 2]", b'"text"', b"null", b"[" * 100_000])
def test_what_is_not_a_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(NotAJsonObject):
        route_body(body)
