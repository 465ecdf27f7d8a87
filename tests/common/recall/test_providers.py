"""Provider configurations: the nine documented providers, their typed options, the transcriber's chain setting."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from pipeline_common.recall.models import (
    Diarization,
)
from pipeline_common.recall.providers import (
    PROVIDER_NAMES,
    AssemblyAiAsyncOptions,
    DeepgramAsyncOptions,
    ProviderConfig,
)

pytestmark = pytest.mark.unit


# --- provider configurations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_all_nine_providers_accept_options_and_pass_them_through(name: str) -> None:
    options = (
        {"language_code": "en"} if name in {"recallai_async", "assembly_ai_async"} else {"whatever": [1, {"a": 2}]}
    )
    config = ProviderConfig.model_validate({name: options})
    assert config.provider_name == name
    assert config.to_request() == {name: options}
    assert config.options_dict() == options
    assert ProviderConfig.of(name, options) == config
    assert ProviderConfig.model_validate({name: {}}).to_request() == {name: {}}


def test_there_are_exactly_the_nine_documented_providers() -> None:
    assert set(PROVIDER_NAMES) == {
        "recallai_async",
        "elevenlabs_async",
        "assembly_ai_async",
        "deepgram_async",
        "aws_transcribe_async",
        "rev_async",
        "speechmatics_async",
        "gladia_v2_async",
        "google_speech_v2_async",
    }


def test_documented_options_are_typed() -> None:
    deepgram = ProviderConfig.model_validate({"deepgram_async": {"model": "nova-3", "language": "multi"}})
    assert deepgram.options == DeepgramAsyncOptions(model="nova-3", language="multi")
    assembly = ProviderConfig.model_validate(
        {"assembly_ai_async": {"language_detection": True, "language_detection_options": {"code_switching": True}}}
    )
    assert isinstance(assembly.options, AssemblyAiAsyncOptions)
    assert assembly.options.language_detection_options is not None
    assert assembly.options.language_detection_options.code_switching is True
    assert assembly.to_request() == {
        "assembly_ai_async": {"language_detection": True, "language_detection_options": {"code_switching": True}}
    }


def test_unset_typed_options_are_not_invented_but_explicit_nulls_are_kept() -> None:
    assert ProviderConfig.model_validate({"deepgram_async": {"model": "nova-3"}}).to_request() == {
        "deepgram_async": {"model": "nova-3"}
    }
    assert ProviderConfig.model_validate({"deepgram_async": {"model": None}}).to_request() == {
        "deepgram_async": {"model": None}
    }


def test_the_transcriber_providers_setting_from_the_design_parses() -> None:
    raw = '[{"recallai_async":{"language_code":"auto"}},{"deepgram_async":{"model":"nova-3","language":"multi"}}]'
    chain = TypeAdapter(list[ProviderConfig]).validate_json(raw)
    assert [config.provider_name for config in chain] == ["recallai_async", "deepgram_async"]
    assert json.loads(TypeAdapter(list[ProviderConfig]).dump_json(chain)) == json.loads(raw)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({}, "exactly one provider key is required, got 0"),
        ({"recallai_async": {}, "deepgram_async": {}}, "exactly one provider key is required, got 2"),
        ({"recallai_async": {}, "deepgram_async": None}, "exactly one provider key is required, got 2"),
        ({"whisper_async": {}}, "unknown provider 'whisper_async'"),
        ({"recallai_streaming": {}}, "unknown provider 'recallai_streaming'"),
        ({"recallai_async": None}, "the options of recallai_async must be an object"),
        ({"recallai_async": "auto"}, "the options of recallai_async must be an object"),
        ({"recallai_async": {"language_code": 5}}, "Input should be a valid string"),
        ({"assembly_ai_async": {"language_detection": "yes"}}, "Input should be a valid boolean"),
        ("recallai_async", "must be an object"),
        ([{"recallai_async": {}}], "must be an object"),
    ],
)
def test_invalid_provider_configurations(value: Any, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ProviderConfig.model_validate(value)
    assert reason in str(caught.value)


def test_provider_configs_are_frozen_and_hashable_by_value() -> None:
    config = ProviderConfig.of("rev_async")
    with pytest.raises(ValidationError):
        config.rev_async = None  # type: ignore[misc]


def test_diarization_passes_through_unknown_options() -> None:
    diarization = Diarization.model_validate({"use_separate_streams_when_available": True, "hybrid": {"x": 1}})
    assert diarization.model_dump() == {"use_separate_streams_when_available": True, "hybrid": {"x": 1}}
    assert Diarization().model_dump() == {}
    with pytest.raises(ValidationError):
        Diarization.model_validate({"use_separate_streams_when_available": "true"})
