from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.recall.models import Transcript, TranscriptPart, parse_transcript
from pipeline_common.recall.render import (
    UNKNOWN_SPEAKER,
    cues,
    language_codes,
    readable,
    readable_json,
    render_readable_json,
    render_srt,
    render_text,
    render_vtt,
    speakers,
    speech_duration,
    word_count,
)
from tests.common.recall.test_models import DOCUMENTED_TRANSCRIPT

pytestmark = pytest.mark.unit


def w(text: str, start: float | None = None, end: float | None = None) -> dict[str, Any]:
    word: dict[str, Any] = {"text": text}
    if start is not None:
        word["start_timestamp"] = {"relative": start, "absolute": None}
    if end is not None:
        word["end_timestamp"] = {"relative": end, "absolute": None}
    return word


def person(pid: int | None, name: str | None) -> dict[str, Any]:
    return {"id": pid, "name": name, "is_host": None, "platform": None, "extra_data": None, "email": None}


def parts(*raw: dict[str, Any]) -> list[TranscriptPart]:
    return parse_transcript(json.dumps(list(raw)))


ALICE = person(1, "Alice")
BOB = person(2, "Bob")
MEETING = parts(
    {"participant": None, "language_code": "en", "words": [w("So", 0.2, 0.4), w("yeah.", 0.4, 0.7)]},
    {
        "participant": ALICE,
        "language_code": "en",
        "words": [w("Hello", 1.0, 1.3), w("everyone", 1.3, 1.8), w(".", 1.8, 1.8)],
    },
    {
        "participant": ALICE,
        "language_code": "en",
        "words": [w("Shall", 2.0, 2.2), w("we", 2.2, 2.3), w("start?", 2.3, 2.6)],
    },
    {
        "participant": BOB,
        "language_code": "en",
        "words": [w("Yes,", 3.0, 3.2), w("let's", 3.2, 3.5), w("go.", 3.5, 3.9)],
    },
)


def test_consecutive_parts_of_one_participant_merge_into_a_paragraph() -> None:
    paragraphs = readable(MEETING)
    assert [(p.speaker, p.text) for p in paragraphs] == [
        (UNKNOWN_SPEAKER, "So yeah."),
        ("Alice", "Hello everyone. Shall we start?"),
        ("Bob", "Yes, let's go."),
    ]
    alice = paragraphs[1]
    assert (alice.start, alice.end, alice.duration, alice.word_count) == (1.0, 2.6, 1.6, 5)


def test_the_readable_json_shape() -> None:
    # Recall's convert_to_readable_transcript: the null participant's part is left out (txt keeps it).
    alice, bob = readable_json(MEETING)
    assert alice == {
        "speaker": "Alice",
        "paragraph": "Hello everyone . Shall we start?",
        "start_timestamp": {"relative": 1.0, "absolute": None},
        "end_timestamp": {"relative": 2.6, "absolute": None},
        "duration_seconds": 2.6 - 1.0,
    }
    assert bob["speaker"] == "Bob"
    json.dumps(readable_json(MEETING))  # JSON-able
    assert json.loads(render_readable_json(MEETING)) == readable_json(MEETING)


def test_plain_text() -> None:
    assert render_text(MEETING) == (
        "[00:00:00] Unknown speaker: So yeah.\n"
        "[00:00:01] Alice: Hello everyone. Shall we start?\n"
        "[00:00:03] Bob: Yes, let's go.\n"
    )
    assert render_text(MEETING, timestamps=False).splitlines()[1] == "Alice: Hello everyone. Shall we start?"


def test_webvtt() -> None:
    assert render_vtt(MEETING) == (
        "WEBVTT\n\n"
        "1\n00:00:00.200 --> 00:00:00.700\n<v Unknown speaker>So yeah.\n\n"
        "2\n00:00:01.000 --> 00:00:02.600\n<v Alice>Hello everyone. Shall we start?\n\n"
        "3\n00:00:03.000 --> 00:00:03.900\n<v Bob>Yes, let's go.\n"
    )


def test_srt() -> None:
    assert render_srt(MEETING) == (
        "1\n00:00:00,200 --> 00:00:00,700\nUnknown speaker: So yeah.\n\n"
        "2\n00:00:01,000 --> 00:00:02,600\nAlice: Hello everyone. Shall we start?\n\n"
        "3\n00:00:03,000 --> 00:00:03,900\nBob: Yes, let's go.\n"
    )


def test_helpers() -> None:
    assert word_count(MEETING) == 10  # the lone "." is not a word
    assert [s.name for s in speakers(MEETING)] == ["Alice", "Bob"]
    assert language_codes(MEETING) == ["en"]
    assert speech_duration(MEETING) == pytest.approx(0.5 + 0.8 + 0.6 + 0.9)


def test_the_documented_shape_renders() -> None:
    transcript = parse_transcript(json.dumps(DOCUMENTED_TRANSCRIPT))
    assert render_text(transcript) == "[00:00:00] Unknown speaker: Hello\n[00:00:01] Alice: Hi, everyone.\n"
    (alice,) = readable_json(transcript)  # the null participant's "Hello" is only in the txt
    assert alice["start_timestamp"]["relative"] == 1.0
    assert alice["speaker"] == "Alice"
    assert language_codes(transcript) == ["en", "en-US"]


@pytest.mark.parametrize("empty", [[], Transcript.model_validate([])])
def test_the_empty_transcript(empty: Any) -> None:
    assert readable(empty) == []
    assert readable_json(empty) == []
    assert render_readable_json(empty) == "[]\n"
    assert render_text(empty) == ""
    assert render_vtt(empty) == "WEBVTT\n"
    assert render_srt(empty) == ""
    assert (word_count(empty), speakers(empty), speech_duration(empty), language_codes(empty)) == (0, [], 0.0, [])


def test_parts_without_words_and_blank_words_add_nothing() -> None:
    transcript = parts(
        {"participant": ALICE, "words": [w("One", 0, 1)]},
        {"participant": BOB, "words": []},
        {"participant": BOB, "words": [w("  ", 1, 2), w("\n", 2, 3)]},
        {"participant": ALICE, "words": [w("two", 3, 4)]},
    )
    assert [(p.speaker, p.text) for p in readable(transcript)] == [("Alice", "One two")]
    assert speech_duration(transcript) == 2.0


def test_null_participants_and_anonymous_participants() -> None:
    transcript = parts(
        {"participant": None, "words": [w("a", 0, 1)]},
        {"participant": person(None, None), "words": [w("b", 1, 2)]},  # also unknown: merges
        {"participant": person(7, None), "words": [w("c", 2, 3)]},
        {"participant": person(None, "Dana"), "words": [w("d", 3, 4)]},
        {"participant": person(None, "Dana"), "words": [w("e", 4, 5)]},
    )
    assert [(p.speaker, p.text) for p in readable(transcript)] == [
        (UNKNOWN_SPEAKER, "a b"),
        ("Speaker 7", "c"),
        ("Dana", "d e"),
    ]
    assert [(s.id, s.name) for s in speakers(transcript)] == [(7, None), (None, "Dana")]


def test_same_name_different_ids_are_different_speakers() -> None:
    transcript = parts(
        {"participant": person(1, "Sam"), "words": [w("a", 0, 1)]},
        {"participant": person(2, "Sam"), "words": [w("b", 1, 2)]},
        {"participant": person(2, "Sam (renamed)"), "words": [w("c", 2, 3)]},
    )
    assert [p.text for p in readable(transcript)] == ["a", "b c"]
    assert len(speakers(transcript)) == 2


def test_words_without_timestamps() -> None:
    transcript = parts(
        {"participant": ALICE, "words": [w("early", 5, 6)]},
        {"participant": BOB, "words": [w("no"), w("times")]},
        {"participant": ALICE, "words": [w("late", 9, 10)]},
    )
    paragraphs = readable(transcript)
    assert (paragraphs[1].start, paragraphs[1].end, paragraphs[1].duration) == (None, None, None)
    assert readable_json(transcript)[1]["start_timestamp"] == {"relative": None, "absolute": None}
    assert render_text(transcript).splitlines()[1] == "Bob: no times"
    # Subtitle cues borrow the time of the cue before them and last the minimum.
    bob = next(cue for cue in cues(transcript) if cue.speaker == "Bob")
    assert (bob.start, bob.end) == (6.0, 6.5)
    assert speech_duration(transcript) == 2.0


def test_only_some_timestamps() -> None:
    transcript = parts({"participant": ALICE, "words": [w("a", start=1.0), w("b", end=3.0), w("c")]})
    (paragraph,) = readable(transcript)
    assert (paragraph.start, paragraph.end) == (1.0, 3.0)
    assert speech_duration(transcript) == 0.0  # no word has both


def test_zero_length_and_backwards_words() -> None:
    transcript = parts({"participant": ALICE, "words": [w("blip", 2.0, 2.0), w("oops", 5.0, 4.0)]})
    (paragraph,) = readable(transcript)
    assert (paragraph.start, paragraph.end) == (2.0, 5.0)
    (cue,) = cues(transcript)
    assert cue.end > cue.start
    assert "00:00:02.000 --> 00:00:05.000" in render_vtt(transcript)
    single = parts({"participant": ALICE, "words": [w("blip", 2.0, 2.0)]})
    assert "00:00:02,000 --> 00:00:02,500" in render_srt(single)
    assert speech_duration(transcript) == 0.0


def test_overlapping_speakers() -> None:
    transcript = parts(
        {"participant": ALICE, "words": [w("I", 0, 1), w("think", 1, 4), w("that", 4, 6)]},
        {"participant": BOB, "words": [w("Right", 2, 3)]},
        {"participant": ALICE, "words": [w("works", 6, 7)]},
    )
    assert [p.text for p in readable(transcript)] == ["I think that", "Right", "works"]
    assert [cue.start for cue in cues(transcript)] == sorted(cue.start for cue in cues(transcript))
    assert speech_duration(transcript) == 7.0  # Bob's overlap is not counted twice


def test_unicode_and_hostile_text() -> None:
    transcript = parts(
        {
            "participant": person(1, "Zoë <b>&</b>\x1b[31m"),
            "language_code": "yue",
            "words": [w("你好", 0, 1), w("，", 1, 1)],
        },
        {
            "participant": person(2, "Ahmed\u202e"),
            "words": [w("line\nbreak\r\n\r\nand --> arrow", 1, 2), w("🎉", 2, 3)],
        },
    )
    vtt = render_vtt(transcript)
    assert "<v Zoë &lt;b&gt;&amp;&lt;/b&gt;[31m>你好，" in vtt
    assert "line break and --&gt; arrow 🎉" in vtt
    assert "\x1b" not in vtt
    srt = render_srt(transcript)
    blocks = srt.strip().split("\n\n")
    assert len(blocks) == 2 and all(len(block.splitlines()) == 3 for block in blocks)
    assert render_text(transcript).splitlines()[0] == "[00:00:00] Zoë <b>&</b>[31m: 你好，"
    assert word_count(transcript) == 5  # 你好, line, break, and, arrow (punctuation, "-->" and emoji are not words)
    assert language_codes(transcript) == ["yue"]


def test_long_turns_are_split_into_readable_cues() -> None:
    words = [w(f"word{i}{'.' if i % 10 == 9 else ''}", i * 0.5, i * 0.5 + 0.4) for i in range(60)]
    transcript = parts({"participant": ALICE, "words": words})
    split = cues(transcript)
    assert len(split) > 4
    assert all(len(cue.text) <= 84 for cue in split)
    assert all(cue.end - cue.start <= 7.5 for cue in split)
    assert " ".join(cue.text for cue in split) == readable(transcript)[0].text


def test_timestamps_past_a_hundred_hours_and_negative_times() -> None:
    transcript = parts({"participant": ALICE, "words": [w("late", 360_000.25, 360_001.5)]})
    assert "100:00:00.250 --> 100:00:01.500" in render_vtt(transcript)
    negative = parts({"participant": ALICE, "words": [w("early", -1.0, 0.5)]})
    assert "00:00:00,000 --> 00:00:00,500" in render_srt(negative)
    assert render_text(negative).startswith("[00:00:00]")


def test_rendering_is_deterministic() -> None:
    assert render_vtt(MEETING) == render_vtt(parse_transcript(json.dumps([p.model_dump(mode="json") for p in MEETING])))


timestamps = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "relative": st.one_of(st.none(), st.floats(min_value=-10, max_value=1e7, allow_nan=False)),
            "absolute": st.none(),
        }
    ),
)
words = st.fixed_dictionaries(
    {"text": st.text(max_size=12), "start_timestamp": timestamps, "end_timestamp": timestamps}
)
participants = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.none(), st.integers(0, 3)),
            "name": st.one_of(st.none(), st.sampled_from(["A", "B", "", "\n"])),
        }
    ),
)
transcripts = st.lists(
    st.fixed_dictionaries({"participant": participants, "words": st.lists(words, max_size=6)}), max_size=6
)


@settings(max_examples=200, deadline=None)
@given(transcripts)
def test_every_valid_transcript_renders(raw: list[dict[str, Any]]) -> None:
    transcript = parse_transcript(json.dumps(raw))
    paragraphs = readable(transcript)
    for paragraph in paragraphs:
        assert paragraph.text and "\n" not in paragraph.text
        if paragraph.start is not None and paragraph.end is not None:
            assert paragraph.end >= paragraph.start
    vtt = render_vtt(transcript)
    assert vtt.startswith("WEBVTT\n")
    for cue in cues(transcript):
        assert cue.end > cue.start >= 0
    srt = render_srt(transcript)
    assert srt.count("-->") == len(cues(transcript))
    json.dumps(readable_json(transcript))
    render_text(transcript)
    assert speech_duration(transcript) >= 0
    assert word_count(transcript) >= sum(p.word_count for p in paragraphs) - 0
