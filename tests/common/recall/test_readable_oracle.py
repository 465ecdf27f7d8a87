"""Issue 14 item 9: ``readable.json`` is exactly what Recall's ``convert_to_readable_transcript`` returns; the
renditions people read or watch keep every spoken word."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline_common.recall import render
from pipeline_common.recall.models import parse_transcript
from tests.common.recall.readable_oracle import convert_to_readable_transcript

pytestmark = pytest.mark.unit


def word(text: str, start: float | None = None, end: float | None = None, absolute: bool = False) -> dict[str, Any]:
    result: dict[str, Any] = {"text": text}
    if start is not None:
        result["start_timestamp"] = {
            "relative": start,
            "absolute": f"2024-12-04T23:25:{int(start):02d}.339940Z" if absolute else None,
        }
    if end is not None:
        result["end_timestamp"] = {
            "relative": end,
            "absolute": f"2024-12-04T23:25:{int(end):02d}.500000Z" if absolute else None,
        }
    return result


def person(pid: int | str | None, name: str | None) -> dict[str, Any]:
    return {"id": pid, "name": name, "is_host": False, "platform": "zoom", "extra_data": None, "email": None}


SHAPES = {
    "null participant splits nothing": [
        {"participant": person(1, "Ada"), "words": [word("Hello", 0.5, 0.9)]},
        {"participant": None, "words": [word("(noise)", 1.0, 1.2)]},
        {"participant": person(1, "Ada"), "words": [word("again", 1.3, 1.7), word(".", 1.7, 1.7)]},
    ],
    "nameless participant is skipped": [
        {"participant": person(2, ""), "words": [word("hidden", 0.0, 0.3)]},
        {"participant": person(3, None), "words": [word("also", 0.3, 0.6)]},
        {"participant": person(4, "Bo"), "words": [word("Hi", 1.0, 1.25)]},
    ],
    "words without timestamps": [
        {"participant": person(5, "Cy"), "words": [word("no"), word("times", None, 2.5), word("here", 1.0)]},
    ],
    "absolute timestamps pass through": [
        {"participant": person(6, "Di"), "words": [word("a", 3.1, 3.4, absolute=True), word("b", 4.0, 5.0, True)]},
    ],
    "no relative, only absolute": [
        {
            "participant": person(7, "Ed"),
            "words": [
                {"text": "x", "start_timestamp": {"relative": None, "absolute": "2024-12-04T23:25:01.250Z"}},
                {"text": "y", "end_timestamp": {"relative": None, "absolute": "2024-12-04T23:25:03.000999Z"}},
            ],
        }
    ],
    "id null, name is the key": [
        {"participant": person(None, "Fay"), "words": [word("one", 0, 1)]},
        {"participant": person(None, "Fay"), "words": [word("two", 1, 2)]},
        {"participant": person(None, "Gus"), "words": [word("three", 2, 3)]},
    ],
    "unrounded durations": [{"participant": person(8, "Hal"), "words": [word("a", 0.1, 0.2), word("b", 0.2, 0.3)]}],
    "blank words and whitespace": [
        {"participant": person(9, "Ivy"), "words": [word(" ", 0, 1), word("  "), word("\u00a0")]},
        {"participant": person(9, "Ivy"), "words": [word("late ", 5, 6)]},
    ],
    "empty": [],
}


@pytest.mark.parametrize("raw", list(SHAPES.values()), ids=list(SHAPES))
def test_readable_json_is_recalls_function_on_every_shape(raw: list[dict[str, Any]]) -> None:
    expected = convert_to_readable_transcript(raw)
    assert render.recall_readable(raw) == expected
    assert json.loads(render.render_readable_json(raw)) == expected


def test_the_documented_differences_from_our_old_form_are_gone() -> None:
    raw = SHAPES["null participant splits nothing"]
    (only,) = render.recall_readable(raw)
    assert only["paragraph"] == "Hello again ."  # tokens joined with single spaces, as Recall's function does
    assert only["start_timestamp"] == {"relative": 0.5, "absolute": None}
    assert only["duration_seconds"] == 1.7 - 0.5  # unrounded
    absolute = render.recall_readable(SHAPES["absolute timestamps pass through"])[0]
    assert absolute["start_timestamp"]["absolute"] == "2024-12-04T23:25:03.339940Z"


def test_people_reading_or_watching_get_every_word_and_the_event_counts_nameless_ones() -> None:
    raw = SHAPES["nameless participant is skipped"] + SHAPES["null participant splits nothing"]
    parts = parse_transcript(json.dumps(raw))
    text, vtt, srt = render.render_text(parts), render.render_vtt(parts), render.render_srt(parts)
    for spoken in ("hidden", "also", "Hi", "(noise)", "again"):
        assert spoken in text and spoken in vtt and spoken in srt
    assert "hidden" not in render.render_readable_json(raw)
    assert render.unnamed_word_count(parts) == 3  # hidden, also, (noise)


timestamps = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "relative": st.one_of(st.none(), st.floats(min_value=0, max_value=1e5, allow_nan=False)),
            "absolute": st.one_of(
                st.none(),
                st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(
                    lambda moment: moment.isoformat().replace("+00:00", "Z")
                ),
            ),
        }
    ),
)
words = st.lists(
    st.fixed_dictionaries(
        {"text": st.text(max_size=6)}, optional={"start_timestamp": timestamps, "end_timestamp": timestamps}
    ),
    max_size=5,
)
participants = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "id": st.one_of(st.none(), st.integers(0, 2), st.sampled_from(["1", "x"])),
            "name": st.one_of(st.none(), st.sampled_from(["A", "B", "", " ", "0"])),
        }
    ),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.fixed_dictionaries({"participant": participants, "words": words}), max_size=6))
def test_any_transcript_renders_exactly_as_recalls_function(raw: list[dict[str, Any]]) -> None:
    expected = convert_to_readable_transcript(json.loads(json.dumps(raw)))
    assert render.recall_readable(raw) == expected
    parse_transcript(json.dumps(raw))  # every shape generated here is one the pipeline accepts
