from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from pipeline_common.recall.models import parse_transcript
from pipeline_common.recall.render import language_codes, speakers, word_count
from recall_sim.generator import TranscriptSpec, generate_transcript, provider_data

pytestmark = pytest.mark.unit


def generate(key: str = "rec-1", **spec: object) -> bytes:
    return generate_transcript(key, TranscriptSpec.model_validate(spec), default_words=200)


def test_deterministic_per_key() -> None:
    assert generate("rec-1") == generate("rec-1")
    assert generate("rec-1") != generate("rec-2")


def test_realistic_shape_that_our_models_accept() -> None:
    parts = parse_transcript(generate(speakers=4, language_code="de"))
    assert word_count(parts) == 200
    assert 2 <= len(speakers(parts)) <= 4
    assert language_codes(parts) == ["de"]
    words = [word for part in parts for word in part.words]
    assert all(word.start is not None and word.end is not None and word.end > word.start for word in words)
    assert all(word.start_timestamp and word.start_timestamp.absolute is None for word in words)  # async: null
    starts = [word.start for word in words]
    assert starts[-1] > starts[0]
    host = [p.participant for p in parts if p.participant and p.participant.is_host]
    assert host


def test_the_first_part_sometimes_has_no_participant() -> None:
    firsts = [parse_transcript(generate(f"rec-{i}"))[0].participant for i in range(40)]
    assert any(first is None for first in firsts) and any(first is not None for first in firsts)
    assert parse_transcript(generate(null_first_participant=True))[0].participant is None
    assert parse_transcript(generate(null_first_participant=False))[0].participant is not None


def test_absolute_timestamps_on_request() -> None:
    data = generate_transcript(
        "r", TranscriptSpec(absolute_timestamps=True), default_words=5, started_at=datetime(2025, 1, 2, tzinfo=UTC)
    )
    word = parse_transcript(data)[0].words[0]
    assert word.start_timestamp and word.start_timestamp.absolute and word.start_timestamp.absolute.year == 2025


@pytest.mark.parametrize("spec", [{"empty": True}, {"words": 0}, {"target_bytes": 0}])
def test_empty_transcripts(spec: dict[str, object]) -> None:
    assert generate(**spec) == b"[]"
    assert generate_transcript("r", TranscriptSpec(), default_words=10, empty=True) == b"[]"


def test_size_by_target_bytes_scales_to_megabytes_quickly() -> None:
    started = time.monotonic()
    data = generate(target_bytes=5_000_000)
    elapsed = time.monotonic() - started
    assert 5_000_000 <= len(data) < 5_050_000
    assert elapsed < 5
    parsed = json.loads(data)
    assert isinstance(parsed, list) and len(parsed) > 100


def test_unicode_survives() -> None:
    names = {
        part.participant.name
        for i in range(10)
        for part in parse_transcript(generate(f"u{i}", speakers=12))
        if part.participant
    }
    assert any(not name.isascii() for name in names if name)


def test_provider_data_is_json() -> None:
    assert json.loads(provider_data("r", "deepgram_async", "t"))["provider"] == "deepgram_async"
