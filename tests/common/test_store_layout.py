"""The store's key layout and its one table of renditions (pure: no store is touched)."""

from __future__ import annotations

import pytest

from pipeline_common.store import RENDITIONS, TranscriptKeys, format_names, rendition_for_format

pytestmark = pytest.mark.unit


def test_each_rendition_has_its_own_key_under_the_transcripts_prefix() -> None:
    keys = TranscriptKeys("rec-1", "tr-1")
    assert keys.raw == "recordings/rec-1/transcripts/tr-1/transcript.json"
    assert keys.provider_data == "recordings/rec-1/transcripts/tr-1/provider_data.json"
    assert keys.manifest == "recordings/rec-1/transcripts/tr-1/manifest.json"
    named = {name: keys.object(name) for name in RENDITIONS}
    assert len(set(named.values())) == len(RENDITIONS)
    assert named["raw"] == keys.raw and named["provider_data"] == keys.provider_data
    assert named["srt"] == "recordings/rec-1/transcripts/tr-1/transcript.srt"


def test_formats_name_renditions_by_name_or_alias() -> None:
    assert rendition_for_format("json") is RENDITIONS["raw"]
    assert rendition_for_format("srt") is RENDITIONS["srt"]
    assert rendition_for_format("manifest") is None
    assert format_names() == ["json", "provider_data", "raw", "readable", "srt", "txt", "vtt"]


def test_only_the_derived_renditions_are_rendered() -> None:
    assert sorted(name for name, rendition in RENDITIONS.items() if rendition.rendered) == [
        "readable",
        "srt",
        "txt",
        "vtt",
    ]


def test_keys_refuse_ids_that_would_escape_the_layout() -> None:
    with pytest.raises(ValueError, match="recording_id"):
        TranscriptKeys("../etc", "tr-1")
    with pytest.raises(ValueError, match="transcript_id"):
        TranscriptKeys.index("a/b")
