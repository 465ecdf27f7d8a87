from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.models import (
    CreateTranscriptRequest,
    Diarization,
    RecordingArtifact,
    Transcript,
    TranscriptArtifact,
    TranscriptPage,
    TranscriptPart,
    parse_recording_artifact,
    parse_transcript,
    parse_transcript_artifact,
    parse_transcript_page,
)
from pipeline_common.recall.providers import (
    RecallaiAsyncOptions,
)
from tests.common.recall.examples import example, example_names

pytestmark = pytest.mark.unit

# The download format exactly as Recall's async transcription guide documents it (absolute null for async).
DOCUMENTED_TRANSCRIPT = [
    {
        "participant": None,
        "language_code": "en",
        "words": [
            {
                "text": "Hello",
                "start_timestamp": {"absolute": None, "relative": 0.52},
                "end_timestamp": {"absolute": None, "relative": 0.9},
            }
        ],
    },
    {
        "participant": {
            "id": 100,
            "name": "Alice",
            "is_host": True,
            "platform": "desktop",
            "extra_data": {"zoom": {"user_guid": "abc"}},
            "email": "alice@example.com",
        },
        "language_code": "en-US",
        "words": [
            {
                "text": "Hi,",
                "start_timestamp": {"absolute": "2024-12-04T23:00:01.000Z", "relative": 1.0},
                "end_timestamp": {"absolute": "2024-12-04T23:00:01.400Z", "relative": 1.4},
            },
            {
                "text": "everyone.",
                "start_timestamp": {"absolute": None, "relative": 1.5},
                "end_timestamp": {"absolute": None, "relative": 2},
            },
        ],
    },
]


def test_every_example_file_is_covered_by_a_test_below() -> None:
    assert example_names() == [
        "create-transcript.request.json",
        "retrieve-transcript.response.json",
        "webhook-transcript.done.json",  # tests/common/recall/test_events.py
    ]


def test_the_documented_retrieve_transcript_response_parses_exactly_as_it_is() -> None:
    artifact = parse_transcript_artifact(example("retrieve-transcript.response.json"))
    assert artifact.id == "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    assert artifact.recording_id == "03d06804-0cb2-42f8-a255-5b950dde7c57"
    assert artifact.bot_id == "0b85d2f9-d54a-47f6-b28d-4c63229f4035"
    assert artifact.created_at == datetime(2024, 11, 27, 20, 10, 19, 719000, tzinfo=UTC)
    assert artifact.expires_at == datetime(2024, 12, 4, 20, 10, 19, 719000, tzinfo=UTC)
    assert artifact.is_done and not artifact.is_failed and not artifact.is_processing
    assert (artifact.status_code, artifact.sub_code) == ("done", None)
    assert artifact.download_url == "..."  # elided in the docs, kept as is
    assert artifact.provider_data_download_url is None
    assert artifact.diarization == Diarization(use_separate_streams_when_available=False)
    assert artifact.metadata_dict == {"custom_field": "some_value"}
    assert artifact.provider_name == "assembly_ai_async"
    config = artifact.provider_config
    assert config is not None and config.options_dict() == {"language": "en"}
    assert artifact.model_dump(mode="json", exclude_none=True)["provider"] == {"assembly_ai_async": {"language": "en"}}


def test_the_documented_create_transcript_request_parses_and_round_trips() -> None:
    raw = example("create-transcript.request.json")
    request = CreateTranscriptRequest.model_validate_json(raw)
    assert request.provider.provider_name == "recallai_async"
    assert request.provider.options == RecallaiAsyncOptions(language_code="auto")
    assert request.diarization == Diarization(use_separate_streams_when_available=True)
    assert request.to_body() == json.loads(raw)


def test_a_processing_or_failed_artifact_has_no_urls() -> None:
    body = json.loads(example("retrieve-transcript.response.json"))
    body["status"] = {"code": "failed", "sub_code": "provider_connection_failed", "updated_at": None}
    body["data"] = {"download_url": None, "provider_data_download_url": None}
    artifact = TranscriptArtifact.model_validate(body)
    assert artifact.is_failed and artifact.sub_code == "provider_connection_failed"
    assert artifact.download_url is None
    body.pop("data")
    assert TranscriptArtifact.model_validate(body).download_url is None


def test_the_provider_echo_is_tolerant() -> None:
    body = json.loads(example("retrieve-transcript.response.json"))
    body["provider"] = {"recallai_async": None, "deepgram_async": {"model": "nova-3"}, "future_async": None}
    artifact = TranscriptArtifact.model_validate(body)
    assert artifact.provider_name == "deepgram_async"
    body["provider"] = {"future_async": {"x": 1}}
    artifact = TranscriptArtifact.model_validate(body)
    assert artifact.provider_name == "future_async"
    assert artifact.provider_config is None
    body["provider"] = None
    assert TranscriptArtifact.model_validate(body).provider_name is None


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda b: b.pop("id"), "id: Field required"),
        (lambda b: b.update(id=5), "id: Input should be a valid string"),
        (lambda b: b.pop("status"), "status: Field required"),
        (lambda b: b["status"].update(code=None), "status.code: Input should be a valid string"),
        (lambda b: b["data"].update(download_url=["x"]), "data.download_url: Input should be a valid string"),
        (lambda b: b.update(created_at="last tuesday"), "created_at: Input should be a valid datetime"),
        (lambda b: b.update(metadata="x"), "metadata: Input should be an object"),
        (lambda b: b["recording"].update(id=None), "recording.id: Input should be a valid string"),
    ],
)
def test_a_malformed_artifact_is_refused(mutate: Any, reason: str) -> None:
    body = json.loads(example("retrieve-transcript.response.json"))
    mutate(body)
    with pytest.raises(InvalidRecallPayload) as caught:
        parse_transcript_artifact(json.dumps(body))
    assert reason in str(caught.value)


@pytest.mark.parametrize("raw", [b"", b"[]", b"<html>502 Bad Gateway</html>", b'{"id": "x"', b"\x00" * 10])
def test_garbage_is_not_an_artifact(raw: bytes) -> None:
    with pytest.raises(InvalidRecallPayload):
        parse_transcript_artifact(raw)


def test_an_oversized_api_response_is_refused() -> None:
    with pytest.raises(InvalidRecallPayload, match="over the"):
        parse_transcript_artifact(b" " * (8 * 1024 * 1024 + 1))


def test_transcript_pages_and_recordings() -> None:
    artifact = json.loads(example("retrieve-transcript.response.json"))
    page = parse_transcript_page(json.dumps({"next": "https://x/api/v1/transcript/?cursor=a", "results": [artifact]}))
    assert isinstance(page, TranscriptPage) and page.previous is None and page.results[0].id == artifact["id"]
    with pytest.raises(InvalidRecallPayload, match="results"):
        parse_transcript_page(b'{"next": null}')
    recording = parse_recording_artifact(
        json.dumps(
            {
                "id": "r1",
                "status": {"code": "done", "sub_code": None, "updated_at": "2024-12-04T23:25:56Z"},
                "metadata": None,
                "media_shortcuts": {"transcript": None},
                "bot": {"id": "b1", "metadata": {}},
                "something_new": [1, 2],
            }
        )
    )
    assert isinstance(recording, RecordingArtifact)
    assert recording.is_done and recording.bot_id == "b1" and recording.metadata_dict == {}
    assert recording.model_extra == {"something_new": [1, 2]}
    with pytest.raises(InvalidRecallPayload, match="recording: id"):
        parse_recording_artifact(b'{"status": null}')


# --- downloaded transcript ------------------------------------------------------------------------------------------


def test_the_documented_transcript_shape_parses() -> None:
    parts = parse_transcript(json.dumps(DOCUMENTED_TRANSCRIPT).encode())
    assert len(parts) == 2
    assert parts[0].participant is None
    alice = parts[1].participant
    assert alice is not None
    assert (alice.id, alice.name, alice.is_host, alice.platform, alice.email) == (
        100,
        "Alice",
        True,
        "desktop",
        "alice@example.com",
    )
    assert alice.extra_data == {"zoom": {"user_guid": "abc"}}
    assert parts[1].language_code == "en-US"
    first = parts[1].words[0]
    assert (first.text, first.start, first.end) == ("Hi,", 1.0, 1.4)
    assert first.start_timestamp is not None
    assert first.start_timestamp.absolute == datetime(2024, 12, 4, 23, 0, 1, tzinfo=UTC)
    assert (parts[1].start, parts[1].end) == (1.0, 2.0)


def test_the_empty_transcript_is_valid() -> None:
    assert parse_transcript(b"[]") == []
    assert parse_transcript(b" [ ] \n") == []
    assert len(Transcript.model_validate([])) == 0


def test_every_participant_field_may_be_null_and_words_may_lack_timestamps() -> None:
    raw = {
        "participant": {"id": None, "name": None, "is_host": None, "platform": None, "extra_data": None, "email": None},
        "words": [{"text": "no-times"}, {"text": "half", "start_timestamp": {"relative": 1}, "end_timestamp": None}],
    }
    (part,) = parse_transcript(json.dumps([raw]))
    assert part.language_code is None
    assert part.participant is not None and part.participant.name is None
    assert [(w.start, w.end) for w in part.words] == [(None, None), (1.0, None)]
    assert (part.start, part.end) == (1.0, None)


def test_participant_ids_may_be_strings_and_new_fields_are_kept() -> None:
    raw = [{"participant": {"id": "p-7", "name": "Zoë", "new": 1}, "words": [], "confidence": 0.9}]
    (part,) = parse_transcript(json.dumps(raw))
    assert part.participant is not None and part.participant.id == "p-7"
    assert part.model_extra == {"confidence": 0.9}
    assert part.participant.model_extra == {"new": 1}


def _part(**changes: Any) -> list[dict[str, Any]]:
    part: dict[str, Any] = {
        "participant": {"id": 1, "name": "A"},
        "language_code": "en",
        "words": [{"text": "x", "start_timestamp": {"relative": 0.0}, "end_timestamp": {"relative": 0.1}}],
    }
    part.update(changes)
    return [part]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not valid JSON"),
        (b"{}", "must be a JSON array"),
        (b"null", "must be a JSON array"),
        (b'"[]"', "must be a JSON array"),
        (b"[1]", "[0]: Input should be an object"),
        (b"[{}]", "[0].words: Field required"),
        (json.dumps(_part(words=None)).encode(), "[0].words: Input should be a valid array"),
        (json.dumps(_part(words=[{"text": 5}])).encode(), "[0].words[0].text: Input should be a valid string"),
        (json.dumps(_part(words=[{"start_timestamp": {}}])).encode(), "[0].words[0].text: Field required"),
        (
            json.dumps(_part(words=[{"text": "x", "start_timestamp": {"relative": "1.5"}}])).encode(),
            "[0].words[0].start_timestamp.relative: Input should be a valid number",
        ),
        (
            json.dumps(_part(words=[{"text": "x", "start_timestamp": {"relative": True}}])).encode(),
            "[0].words[0].start_timestamp.relative: Input should be a valid number",
        ),
        (b'[{"words": [{"text": "x", "start_timestamp": {"relative": NaN}}]}]', "finite number"),
        (b'[{"words": [{"text": "x", "end_timestamp": {"relative": Infinity}}]}]', "finite number"),
        (
            json.dumps(_part(words=[{"text": "x", "end_timestamp": {"absolute": "soon"}}])).encode(),
            "[0].words[0].end_timestamp.absolute",
        ),
        (json.dumps(_part(participant={"id": True})).encode(), "[0].participant.id"),
        (json.dumps(_part(participant={"id": 1.5})).encode(), "[0].participant.id"),
        (json.dumps(_part(participant={"is_host": "yes"})).encode(), "[0].participant.is_host"),
        (json.dumps(_part(participant="Alice")).encode(), "[0].participant: Input should be an object"),
        (json.dumps(_part(language_code=["en"])).encode(), "[0].language_code: Input should be a valid string"),
        (b"[" * 5000 + b"]" * 5000, "not valid JSON"),
        (b"\xff\xfe[]", "not valid JSON"),
    ],
)
def test_malformed_transcripts_are_refused_with_the_path_to_the_problem(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidRecallPayload) as caught:
        parse_transcript(raw)
    assert reason in str(caught.value)


def test_an_oversized_transcript_is_refused_when_a_cap_is_given() -> None:
    raw = json.dumps(DOCUMENTED_TRANSCRIPT * 1000).encode()
    assert len(parse_transcript(raw)) == 2000
    with pytest.raises(InvalidRecallPayload, match="over the 1000-byte limit"):
        parse_transcript(raw, max_bytes=1000)


def test_many_errors_are_summarised() -> None:
    with pytest.raises(InvalidRecallPayload, match=r"\(and 2 more\)"):
        parse_transcript(b"[1, 2, 3]")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_are_a_transcript_or_the_documented_error(raw: bytes) -> None:
    try:
        parts = parse_transcript(raw)
    except InvalidRecallPayload:
        return
    assert all(isinstance(part, TranscriptPart) for part in parts)
