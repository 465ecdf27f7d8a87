"""Create Async Transcript provider configurations for the nine async providers in Recall's docs.

A configuration is a JSON object with exactly one provider key whose value is that provider's options::

    {"recallai_async": {"language_code": "auto"}}
    {"deepgram_async": {"model": "nova-3", "language": "multi"}}

Options are passed to Recall as given (Recall validates them); the ones Recall's async transcription guide documents
are typed, so a typo in their type fails here rather than at Recall. Unknown options are kept and forwarded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, get_args

from pydantic import (
    ConfigDict,
    SerializerFunctionWrapHandler,
    StrictBool,
    StrictStr,
    model_serializer,
    model_validator,
)

from pipeline_common.recall._base import PassThroughModel, RecallModel

ProviderName = Literal[
    "recallai_async",
    "elevenlabs_async",
    "assembly_ai_async",
    "deepgram_async",
    "aws_transcribe_async",
    "rev_async",
    "speechmatics_async",
    "gladia_v2_async",
    "google_speech_v2_async",
]
PROVIDER_NAMES: Final[tuple[str, ...]] = get_args(ProviderName)


class ProviderOptions(PassThroughModel):
    """Options for one provider; anything not typed here is forwarded untouched."""


class RecallaiAsyncOptions(ProviderOptions):
    language_code: StrictStr | None = None  # "auto" detects the language


class ElevenlabsAsyncOptions(ProviderOptions):
    pass


class AssemblyAiLanguageDetectionOptions(PassThroughModel):
    code_switching: StrictBool | None = None


class AssemblyAiAsyncOptions(ProviderOptions):
    language_code: StrictStr | None = None
    language_detection: StrictBool | None = None
    language_detection_options: AssemblyAiLanguageDetectionOptions | None = None


class DeepgramAsyncOptions(ProviderOptions):
    model: StrictStr | None = None  # "nova-2" / "nova-3" with language "multi" detects and code-switches
    language: StrictStr | None = None


class AwsTranscribeAsyncOptions(ProviderOptions):
    pass


class RevAsyncOptions(ProviderOptions):
    pass


class SpeechmaticsAsyncOptions(ProviderOptions):
    pass


class GladiaV2AsyncOptions(ProviderOptions):
    pass


class GoogleSpeechV2AsyncOptions(ProviderOptions):
    pass


OPTIONS_MODELS: Final[dict[str, type[ProviderOptions]]] = {
    "recallai_async": RecallaiAsyncOptions,
    "elevenlabs_async": ElevenlabsAsyncOptions,
    "assembly_ai_async": AssemblyAiAsyncOptions,
    "deepgram_async": DeepgramAsyncOptions,
    "aws_transcribe_async": AwsTranscribeAsyncOptions,
    "rev_async": RevAsyncOptions,
    "speechmatics_async": SpeechmaticsAsyncOptions,
    "gladia_v2_async": GladiaV2AsyncOptions,
    "google_speech_v2_async": GoogleSpeechV2AsyncOptions,
}


class ProviderConfig(RecallModel):
    """Exactly one of the nine provider keys, with its options. Serialises to ``{name: options}`` as given."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    recallai_async: RecallaiAsyncOptions | None = None
    elevenlabs_async: ElevenlabsAsyncOptions | None = None
    assembly_ai_async: AssemblyAiAsyncOptions | None = None
    deepgram_async: DeepgramAsyncOptions | None = None
    aws_transcribe_async: AwsTranscribeAsyncOptions | None = None
    rev_async: RevAsyncOptions | None = None
    speechmatics_async: SpeechmaticsAsyncOptions | None = None
    gladia_v2_async: GladiaV2AsyncOptions | None = None
    google_speech_v2_async: GoogleSpeechV2AsyncOptions | None = None

    @model_validator(mode="before")
    @classmethod
    def _exactly_one_provider(cls, value: Any) -> Any:
        if isinstance(value, ProviderConfig):
            return value
        if not isinstance(value, Mapping):
            raise ValueError('a provider configuration must be an object like {"recallai_async": {...}}')
        unknown = sorted(str(key) for key in value if key not in PROVIDER_NAMES)
        if unknown:
            shown = ", ".join(repr(name[:40]) for name in unknown[:3])
            raise ValueError(f"unknown provider {shown}; expected one of {', '.join(PROVIDER_NAMES)}")
        if len(value) != 1:
            raise ValueError(f"exactly one provider key is required, got {len(value)}")
        ((name, options),) = value.items()
        if not isinstance(options, Mapping | ProviderOptions):
            raise ValueError(f"the options of {name} must be an object")
        return value

    @model_serializer(mode="wrap")
    def _one_key(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {self.provider_name: data[self.provider_name]}

    @property
    def provider_name(self) -> str:
        for name in PROVIDER_NAMES:
            if getattr(self, name) is not None:
                return name
        raise AssertionError("unreachable: validated to hold one provider")  # pragma: no cover

    @property
    def options(self) -> ProviderOptions:
        options: ProviderOptions = getattr(self, self.provider_name)
        return options

    def options_dict(self) -> dict[str, Any]:
        """The options exactly as they will be sent to Recall."""
        return self.options.model_dump(mode="json")

    def to_request(self) -> dict[str, Any]:
        """The value of ``provider`` in a Create Async Transcript body."""
        return self.model_dump(mode="json")

    @classmethod
    def of(cls, name: str, options: Mapping[str, Any] | None = None) -> ProviderConfig:
        """``ProviderConfig.of("deepgram_async", {"model": "nova-3"})``; raises pydantic's ValidationError."""
        return cls.model_validate({name: dict(options or {})})
