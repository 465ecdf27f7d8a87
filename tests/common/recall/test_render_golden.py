"""The renditions stay byte-identical to recorded ones, and rendering from paragraphs grouped once equals the
wrappers, for any valid transcript."""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings

from pipeline_common.recall.models import parse_transcript
from pipeline_common.recall.render import (
    cues,
    format_readable_json,
    format_srt,
    format_text,
    format_vtt,
    paragraph_cues,
    readable,
    readable_json,
    render_readable_json,
    render_srt,
    render_text,
    render_vtt,
)
from tests.common.recall.test_render import transcripts

pytestmark = pytest.mark.unit


def golden_transcript() -> list[dict[str, Any]]:
    """A fixed, varied transcript (seeded): turns long enough to split into cues, every punctuation kind, unicode and
    control characters, missing, zero-length, backwards and absolute timestamps, null and anonymous participants."""
    rng = random.Random(20261121)
    vocabulary = ["the", "plan", "ok", "Zoë", "你好", "<b>&</b>", "line\nbreak", "\x1b[31m", " ", "", ".", ",", "?"]
    vocabulary += ["…", "。", "well,", "done.", "really?", "(aside)", "100%", "don't", "ça", "—"]
    people = [None, {"id": 1, "name": "Alice"}, {"id": 2, "name": "Bob"}, {"id": None, "name": "Carol"}]
    people += [{"id": "x", "name": None}, {"id": None, "name": " "}]
    raw: list[dict[str, Any]] = []
    clock = 0.0
    for _ in range(60):
        words = []
        for _ in range(rng.randint(0, 40)):
            start = round(clock, 3)
            clock += rng.choice([0.0, 0.1, 0.25, 0.4, 1.3])
            end = round(clock + rng.choice([0.0, 0.2, -0.3]), 3)
            word: dict[str, Any] = {"text": rng.choice(vocabulary)}
            shape = rng.random()
            if shape > 0.1:
                second = int(start)
                absolute = f"2024-05-01T10:{second // 60 % 60:02d}:{second % 60:02d}.{int(start * 1000) % 1000:03d}Z"
                word["start_timestamp"] = {"relative": start, "absolute": absolute if shape > 0.7 else None}
            if shape > 0.2:
                word["end_timestamp"] = {"relative": end, "absolute": None}
            words.append(word)
        raw.append({"participant": rng.choice(people), "language_code": rng.choice(["en", None, "fr"]), "words": words})
    return raw


# sha256 of each rendition of golden_transcript(), recorded with the renderers as they were before they were split
# into "group once" (readable, paragraph_cues) and "format" (format_*) steps: the split changed no byte.
GOLDEN_SHA256 = {
    "readable": "b0a297cf2c2d811cf5712212ebaf3603a9cd7dd2e9c12d5d927285dfc468ad41",
    "txt": "6e14aa8ccf87be4cd71ed046ea32205f672bc216834d5c9671d92553234deb4a",
    "vtt": "99388ef762b37f4dc63fe13197d46d6cb5c49f6d56a8e2c109e2ffd454706b1e",
    "srt": "99f991075d6b6cb8cc1acd107d6ced6251b5d6e8d07285c599167f16c290c682",
    "txt without timestamps": "74745ce711e6a6a0907d83f941624c4f9753ef225c1cb4de7c913209065aa317",
    "vtt, short cues": "dcb32537090158f298c1e371a99c8d3182ce2348d2cb9750bb8c9b29f594ca1e",
    "srt, short cues": "c12f9674016085eb1289bb5501c1da4c7036cfa39be9e7d504e35877295a9382",
}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_renditions_are_byte_identical_to_the_recorded_ones() -> None:
    transcript = parse_transcript(json.dumps(golden_transcript()))
    short = {"max_seconds": 3.0, "max_chars": 30}
    by_wrappers = {
        "readable": render_readable_json(transcript),
        "txt": render_text(transcript),
        "vtt": render_vtt(transcript),
        "srt": render_srt(transcript),
        "txt without timestamps": render_text(transcript, timestamps=False),
        "vtt, short cues": render_vtt(transcript, **short),
        "srt, short cues": render_srt(transcript, **short),
    }
    paragraphs = readable(transcript)  # grouped once, formatted many times
    cue_list = paragraph_cues(paragraphs)
    short_cues = paragraph_cues(paragraphs, **short)
    from_paragraphs = {
        "readable": format_readable_json(readable_json(transcript)),
        "txt": format_text(paragraphs),
        "vtt": format_vtt(cue_list),
        "srt": format_srt(cue_list),
        "txt without timestamps": format_text(paragraphs, timestamps=False),
        "vtt, short cues": format_vtt(short_cues),
        "srt, short cues": format_srt(short_cues),
    }
    assert {name: sha256(text) for name, text in by_wrappers.items()} == GOLDEN_SHA256
    assert {name: sha256(text) for name, text in from_paragraphs.items()} == GOLDEN_SHA256
    assert cue_list == cues(transcript)
    assert short_cues == cues(transcript, **short)


@settings(max_examples=200, deadline=None)
@given(transcripts)
def test_formatting_from_paragraphs_grouped_once_equals_the_wrappers(raw: list[dict[str, Any]]) -> None:
    transcript = parse_transcript(json.dumps(raw))
    paragraphs = readable(transcript)
    cue_list = paragraph_cues(paragraphs)
    for _ in range(2):  # formatting neither consumes nor changes the paragraphs and cues
        assert format_text(paragraphs) == render_text(transcript)
        assert format_text(paragraphs, timestamps=False) == render_text(transcript, timestamps=False)
        assert format_vtt(cue_list) == render_vtt(transcript)
        assert format_srt(cue_list) == render_srt(transcript)
