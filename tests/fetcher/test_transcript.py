"""The fetcher's bounded-memory transcript reader: the same verdicts and the same renditions as the library's
``parse_transcript`` + ``render``, for any transcript, read in chunks of any size."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fetcher.transcript import WRITERS, analyse, read_parts, render_one
from pipeline_common.recall import render
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.models import parse_transcript
from pipeline_common.store import RENDITIONS
from recall_sim.generator import TranscriptSpec, generate_transcript
from tests.common.recall.test_models import DOCUMENTED_TRANSCRIPT

pytestmark = pytest.mark.unit

LIBRARY = {
    "readable": render.render_readable_json,
    "txt": render.render_text,
    "vtt": render.render_vtt,
    "srt": render.render_srt,
}


def assert_same_as_library(data: bytes, tmp_path: Path, read_bytes: int = 1024 * 1024) -> None:
    path = tmp_path / "t.json"
    path.write_bytes(data)
    parts = parse_transcript(data)
    analysis = analyse(path, read_bytes=read_bytes)
    assert set(WRITERS) == {name for name, rendition in RENDITIONS.items() if rendition.rendered}
    for name in WRITERS:
        # readable.json is Recall's form of the parts as downloaded (absolute timestamps byte for byte).
        source = json.loads(data) if name == "readable" else parts
        assert render_one(analysis, name) == LIBRARY[name](source).encode(), name
    assert analysis.unnamed_word_count == render.unnamed_word_count(parts)
    assert analysis.paragraphs == render.readable(parts)
    assert analysis.cues == render.cues(parts)
    assert analysis.word_count == render.word_count(parts)
    assert analysis.language_codes == render.language_codes(parts)
    assert analysis.speech_duration_seconds == render.speech_duration(parts)
    assert [(p.id, p.name, p.is_host) for p in analysis.participants] == [
        (p.id, p.name, p.is_host) for p in render.speakers(parts)
    ]


@pytest.mark.parametrize(
    "spec",
    [
        TranscriptSpec(words=400, speakers=3),
        TranscriptSpec(words=300, speakers=5, null_first_participant=True, absolute_timestamps=True),
        TranscriptSpec(words=50, speakers=1, language_code="de"),
        TranscriptSpec(empty=True),
    ],
)
@pytest.mark.parametrize("read_bytes", [7, 1024 * 1024])
def test_generated_transcripts_render_exactly_like_the_library(
    spec: TranscriptSpec, read_bytes: int, tmp_path: Path
) -> None:
    data = generate_transcript("k", spec, default_words=400, started_at=datetime(2024, 5, 1, tzinfo=UTC))
    assert_same_as_library(data, tmp_path, read_bytes)


def test_the_documented_transcript(tmp_path: Path) -> None:
    data = (
        DOCUMENTED_TRANSCRIPT
        if isinstance(DOCUMENTED_TRANSCRIPT, bytes)
        else json.dumps(DOCUMENTED_TRANSCRIPT).encode()
    )
    assert_same_as_library(data, tmp_path, read_bytes=5)


timestamps = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "relative": st.one_of(st.none(), st.floats(0, 10_000, allow_nan=False)),
            "absolute": st.one_of(st.none(), st.just("2024-01-01T00:00:01.5Z")),
        }
    ),
)
words = st.fixed_dictionaries(
    {"text": st.text(max_size=12)}, optional={"start_timestamp": timestamps, "end_timestamp": timestamps}
)
participants = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.none(), st.integers(0, 5), st.sampled_from(["a", "b"])),
            "name": st.one_of(st.none(), st.sampled_from(["Ana", "Bo", " ", "Zoë\n"])),
        },
        optional={"is_host": st.booleans(), "extra_data": st.just({"k": [1]}), "email": st.none()},
    ),
)
transcripts = st.lists(
    st.fixed_dictionaries(
        {"participant": participants, "words": st.lists(words, max_size=8)},
        optional={"language_code": st.sampled_from(["en", "fr", None])},
    ),
    max_size=8,
)


@settings(max_examples=150, deadline=None)
@given(transcript=transcripts, read_bytes=st.integers(1, 64), indent=st.sampled_from([None, 1]))
def test_any_valid_transcript_renders_exactly_like_the_library(
    transcript: list[dict[str, Any]], read_bytes: int, indent: int | None, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = json.dumps(transcript, indent=indent, ensure_ascii=False).encode()
    assert_same_as_library(data, tmp_path_factory.mktemp("h"), read_bytes)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b"<html>oops</html>", "not valid JSON"),
        (b'{"words": []}', "must be a JSON array"),
        (b"[", "ends inside the array"),
        (b'[{"words": []}', "expected ',' or ']'"),
        (b'[{"words": [] ', "not valid JSON"),
        (b'[{"words": []},]', "not valid JSON"),
        (b'[{"words": []}] x', "extra data"),
        (b"[1]", "[0]"),
        (b'[{"words": []}, {"words": [{"text": 1}]}]', "transcript part [1]: words[0].text"),
        (b'[{"words": [{"text": "a", "start_timestamp": {"relative": NaN}}]}]', "transcript part [0]"),
        (b'[{"words": [{"text": "\xff"}]}]', "not valid UTF-8"),
        (b'[{"participant": 3, "words": []}]', "participant"),
    ],
)
@pytest.mark.parametrize("read_bytes", [1, 3, 4096])
def test_invalid_transcripts_are_rejected_with_a_reason(data: bytes, reason: str, read_bytes: int) -> None:
    with pytest.raises(InvalidRecallPayload) as caught:
        list(read_parts(io.BytesIO(data), read_bytes=read_bytes))
    assert reason in str(caught.value)
    with pytest.raises(InvalidRecallPayload):  # the library agrees it is invalid
        parse_transcript(data)


def test_a_part_larger_than_many_reads(tmp_path: Path) -> None:
    big = [
        {"participant": None, "words": [{"text": f"w{i}", "start_timestamp": {"relative": i}} for i in range(20_000)]}
    ]
    assert_same_as_library(json.dumps(big).encode(), tmp_path, read_bytes=4096)


def test_the_transcript_is_grouped_once_for_all_renditions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """analyse groups the parts into paragraphs and cues once; the four renditions are formatted from those, not
    each regrouped from the parts."""
    data = generate_transcript("k", TranscriptSpec(words=400, speakers=3), default_words=400)
    path = tmp_path / "t.json"
    path.write_bytes(data)
    parts = parse_transcript(data)
    expected = {name: renderer(parts).encode() for name, renderer in LIBRARY.items()}
    calls = {"readable": 0, "paragraph_cues": 0}
    readable, paragraph_cues = render.readable, render.paragraph_cues

    def counted_readable(*args: Any, **kwargs: Any) -> Any:
        calls["readable"] += 1
        return readable(*args, **kwargs)

    def counted_cues(*args: Any, **kwargs: Any) -> Any:
        calls["paragraph_cues"] += 1
        return paragraph_cues(*args, **kwargs)

    monkeypatch.setattr(render, "readable", counted_readable)
    monkeypatch.setattr(render, "paragraph_cues", counted_cues)
    analysis = analyse(path)
    assert calls == {"readable": 1, "paragraph_cues": 1}
    assert {name: render_one(analysis, name) for name in WRITERS} == expected
    assert calls == {"readable": 1, "paragraph_cues": 1}


def test_renditions_written_to_files_are_the_rendered_bytes(tmp_path: Path) -> None:
    """The fetcher streams each rendition into a staging file, hashing as it writes: the same bytes and sha256 as
    rendering it whole, and nothing left behind when writing fails."""
    import hashlib

    from fetcher.transcript import write_renditions

    data = generate_transcript("k", TranscriptSpec(words=3000, speakers=3), default_words=400)
    path = tmp_path / "t.json"
    path.write_bytes(data)
    analysis = analyse(path)
    written = write_renditions(analysis, tmp_path, "t")
    assert set(written) == set(WRITERS)
    for name, (file, sha256) in written.items():
        expected = render_one(analysis, name)
        assert file.read_bytes() == expected, name
        assert sha256 == hashlib.sha256(expected).hexdigest(), name
    for file, _ in written.values():
        file.unlink()
    (tmp_path / "t-vtt.tmp").mkdir()  # the third rendition cannot be opened
    with pytest.raises(IsADirectoryError):
        write_renditions(analysis, tmp_path, "t")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t-vtt.tmp", "t.json"]


@pytest.mark.parametrize(
    "absolute",
    [
        "2024-01-01T00:00:01.5Z",
        "2024-01-01T00:00:01+02:00",
        "2024-01-01T00:00:01.123456-05:30",
        "2024-01-01 00:00:01Z",
        "2024-01-01T00:00:01",
        1704067201,
        "1704067201",
        "2024-13-01T00:00:00Z",
        "٢٠٢٤-01-01T00:00:01Z",
        "not a time",
        True,
    ],
)
def test_absolute_timestamps_get_the_library_verdict_and_values(absolute: Any, tmp_path: Path) -> None:
    """The fast reader checks every word's absolute time without a datetime per word; any form it does not know
    exactly goes to the library's path: the same verdict, the same renditions."""
    stamp = {"relative": 1.0, "absolute": absolute}
    transcript = [{"participant": {"id": 1, "name": "Ana"}, "words": [{"text": "hi", "start_timestamp": stamp}]}]
    data = json.dumps(transcript).encode()
    try:
        parse_transcript(data)
    except InvalidRecallPayload:
        path = tmp_path / "t.json"
        path.write_bytes(data)
        with pytest.raises(InvalidRecallPayload):
            analyse(path)
        return
    assert_same_as_library(data, tmp_path)
