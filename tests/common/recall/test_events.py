from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.recall.events import InvalidRecallPayload, WebhookEvent, parse_webhook_event
from tests.common.recall.examples import example

pytestmark = pytest.mark.unit

REC = "03d06804-0cb2-42f8-a255-5b950dde7c57"
BOT = "0b85d2f9-d54a-47f6-b28d-4c63229f4035"
TR = "7d7387b1-874f-4950-a5b9-1ba6660e2f95"


def status(code: str = "done", sub_code: str | None = None) -> dict[str, Any]:
    return {"code": code, "sub_code": sub_code, "updated_at": "2024-12-04T23:25:56.339940Z"}


def recording_event(event: str = "recording.done", **data: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": event,
        "data": {
            "data": status(event.split(".")[1]),
            "recording": {"id": REC, "metadata": {"team": "sales"}},
            "bot": {"id": BOT, "metadata": {}},
        },
    }
    body["data"].update(data)
    return body


def parse(body: Any) -> WebhookEvent:
    return parse_webhook_event(json.dumps(body).encode())


def test_the_documented_transcript_done_example_parses_exactly_as_it_is() -> None:
    event = parse_webhook_event(example("webhook-transcript.done.json"))
    assert event.event == "transcript.done"
    assert event.family == "transcript"
    assert event.name == "done"
    assert event.recording_id == REC
    assert event.transcript_id == TR
    assert event.bot_id == BOT
    assert event.artifact_id == TR
    assert event.code == "done"
    assert event.sub_code is None
    assert event.updated_at == datetime(2024, 12, 4, 23, 25, 56, 339940, tzinfo=UTC)
    assert event.recording_metadata == {}
    assert event.transcript_metadata == {}


def test_str_bodies_parse_too() -> None:
    assert parse_webhook_event(example("webhook-transcript.done.json").decode()).event == "transcript.done"


def test_recording_done_with_metadata() -> None:
    event = parse(recording_event())
    assert (event.family, event.recording_id, event.bot_id, event.transcript_id) == ("recording", REC, BOT, None)
    assert event.recording_metadata == {"team": "sales"}
    assert event.artifact_id == REC


def test_bot_may_be_null_desktop_sdk_recordings() -> None:
    event = parse(recording_event(bot=None))
    assert event.bot_id is None
    assert event.bot_metadata == {}


def test_transcript_failed_carries_its_sub_code() -> None:
    body = json.loads(example("webhook-transcript.done.json"))
    body["event"] = "transcript.failed"
    body["data"]["data"] = status("failed", "provider_connection_failed")
    event = parse(body)
    assert (event.code, event.sub_code) == ("failed", "provider_connection_failed")


def test_metadata_null_reads_as_empty() -> None:
    body = recording_event()
    body["data"]["recording"]["metadata"] = None
    assert parse(body).recording_metadata == {}


@pytest.mark.parametrize(
    "family",
    ["audio_mixed", "participant_events", "video_mixed", "meeting_metadata", "audio_separate"],
)
def test_other_media_artifact_events(family: str) -> None:
    body = recording_event(f"{family}.done", **{family: {"id": "art-1", "metadata": {}}})
    event = parse(body)
    assert event.family == family
    assert event.artifact_id == "art-1"
    assert event.recording_id == REC
    assert event.model_extra is not None  # the artifact is kept as an extra field
    assert event.data.model_extra == {family: {"id": "art-1", "metadata": {}}}


def test_bot_status_events() -> None:
    body = {
        "event": "bot.in_call_recording",
        "data": {"data": status("in_call_recording"), "bot": {"id": BOT, "metadata": {"customer": "acme"}}},
    }
    event = parse(body)
    assert (event.family, event.name, event.bot_id, event.recording_id) == ("bot", "in_call_recording", BOT, None)
    assert event.bot_metadata == {"customer": "acme"}
    assert event.code == "in_call_recording"


def test_an_unknown_family_still_parses_and_keeps_everything() -> None:
    body = {"event": "calendar.sync_events", "data": {"calendar_id": "c1", "last_updated_ts": "2025-01-01T00:00:00Z"}}
    event = parse(body)
    assert event.family == "calendar"
    assert event.code is None and event.recording_id is None and event.bot_id is None and event.updated_at is None
    assert event.data.model_extra == {"calendar_id": "c1", "last_updated_ts": "2025-01-01T00:00:00Z"}


def test_fields_recall_adds_later_are_kept() -> None:
    body = recording_event()
    body["new_top_level"] = 1
    body["data"]["data"]["new_status_field"] = "x"
    body["data"]["recording"]["source"] = {"bot": {"id": BOT}}
    event = parse(body)
    assert event.model_extra == {"new_top_level": 1}
    assert event.model_dump()["data"]["data"]["new_status_field"] == "x"
    assert event.model_dump()["data"]["recording"]["source"] == {"bot": {"id": BOT}}


def _without(path: list[str]) -> dict[str, Any]:
    body = json.loads(example("webhook-transcript.done.json"))
    target = body
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return body


def _with(path: list[str], value: Any) -> dict[str, Any]:
    body = json.loads(example("webhook-transcript.done.json"))
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return body


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not valid JSON"),
        (b"not json", "not valid JSON"),
        (b'{"event": "recording.done", "data": {', "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"recording.done"', "must be a JSON object"),
        (b"null", "must be a JSON object"),
        (b"42", "must be a JSON object"),
        (b"{}", "event: Field required"),
        (b'{"event": "recording.done"}', "data: Field required"),
        (b'{"data": {}}', "event: Field required"),
        (b"\xff\xfe{}", "not valid JSON"),
        ("[" * 10_000 + "]" * 10_000, "not valid JSON"),
    ],
)
def test_malformed_bodies_are_refused_with_a_reason(raw: bytes | str, reason: str) -> None:
    with pytest.raises(InvalidRecallPayload) as caught:
        parse_webhook_event(raw)
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 600


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_with(["event"], 5), "event: Input should be a valid string"),
        (_with(["event"], ""), "event: String should match pattern"),
        (_with(["event"], "done"), "event: String should match pattern"),
        (_with(["event"], "transcript."), "event: String should match pattern"),
        (_with(["event"], "transcript done"), "event: String should match pattern"),
        (_with(["event"], "a." + "x" * 500), "event: String should match pattern"),
        (_with(["data"], []), "data: Input should be an object"),
        (_with(["data"], None), "data: Input should be an object"),
        (_with(["data", "recording", "id"], 42), "data.recording.id: Input should be a valid string"),
        (_with(["data", "recording", "id"], ""), "data.recording.id: String should have at least 1 character"),
        (_with(["data", "transcript", "id"], None), "data.transcript.id: Input should be a valid string"),
        (_with(["data", "bot"], "0b85"), "data.bot: Input should be an object"),
        (_with(["data", "recording", "metadata"], []), "data.recording.metadata: Input should be an object"),
        (_with(["data", "data", "code"], None), "data.data.code: Input should be a valid string"),
        (_with(["data", "data", "sub_code"], 3), "data.data.sub_code: Input should be a valid string"),
        (_with(["data", "data", "updated_at"], "yesterday"), "data.data.updated_at: Input should be a valid datetime"),
        (_with(["data", "data", "updated_at"], None), "needs data.data.updated_at"),
        (_without(["data", "data"]), "needs data.data"),
        (_without(["data", "recording"]), "needs data.recording"),
        (_without(["data", "transcript"]), "a transcript.* event needs data.transcript"),
        ({"event": "bot.done", "data": {"data": status()}}, "a bot.* event needs data.bot"),
        ({"event": "audio_mixed.done", "data": {"audio_mixed": {"id": 5}}}, "data.audio_mixed must be an object"),
    ],
)
def test_wrong_types_for_fields_we_rely_on_are_refused(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(InvalidRecallPayload) as caught:
        parse(body)
    assert reason in str(caught.value)


def test_the_reason_never_echoes_the_input() -> None:
    body = _with(["data", "recording", "id"], {"secret": "s3cr3t-value"})
    with pytest.raises(InvalidRecallPayload) as caught:
        parse(body)
    assert "s3cr3t-value" not in str(caught.value)


def test_oversized_bodies_are_refused_before_parsing() -> None:
    body = recording_event()
    body["data"]["recording"]["metadata"] = {"pad": "x" * (64 * 1024 * 1024)}
    raw = json.dumps(body).encode()
    with pytest.raises(InvalidRecallPayload, match="over the 67108864-byte limit"):
        parse_webhook_event(raw)
    assert parse_webhook_event(raw, max_bytes=None).recording_metadata["pad"] == "x" * (64 * 1024 * 1024)


def test_invalid_recall_payload_is_a_value_error() -> None:
    assert issubclass(InvalidRecallPayload, ValueError)


def test_the_event_round_trips_byte_for_byte_semantics() -> None:
    raw = example("webhook-transcript.done.json")
    assert parse_webhook_event(raw).model_dump(mode="json") == json.loads(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_parse_or_fail_with_the_documented_error(raw: bytes) -> None:
    with contextlib.suppress(InvalidRecallPayload):
        parse_webhook_event(raw)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    event=st.one_of(st.sampled_from(["recording.done", "transcript.failed", "bot.done", "x.y"]), st.text(max_size=20)),
    data=st.dictionaries(st.sampled_from(["data", "recording", "transcript", "bot", "x"]), json_values, max_size=5),
)
def test_arbitrary_shapes_parse_or_fail_with_the_documented_error(event: str, data: dict[str, Any]) -> None:
    try:
        parsed = parse({"event": event, "data": data})
    except InvalidRecallPayload:
        return
    assert parsed.event == event
    if parsed.family in {"recording", "transcript"}:
        assert parsed.recording_id is not None and parsed.updated_at is not None


def test_recalls_bot_status_change_with_bot_id_parses() -> None:
    # Issue 14 item 2: Recall's v1.10 bot status change and call events carry data.bot_id, not data.bot.
    raw = json.dumps({"event": "bot.status_change", "data": {"bot_id": "bot-1", "status": {"code": "done"}}})
    event = parse_webhook_event(raw)
    assert (event.family, event.bot_id, event.recording_id) == ("bot", "bot-1", None)
