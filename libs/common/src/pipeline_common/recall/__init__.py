"""Recall.ai contracts and API client: webhook events, artifacts, the downloaded transcript, provider
configurations, renderers, typed errors, and an async client.

- :mod:`pipeline_common.recall.events`: ``parse_webhook_event`` -> ``WebhookEvent``
- :mod:`pipeline_common.recall.models`: ``TranscriptArtifact``, ``RecordingArtifact``, ``Transcript``,
  ``TranscriptPart``, ``parse_transcript``, ``Diarization``, ``ProviderConfig``
- :mod:`pipeline_common.recall.providers`: the nine async providers and their options
- :mod:`pipeline_common.recall.render`: readable JSON, plain text, WebVTT, SRT, word count, speakers, durations
- :mod:`pipeline_common.recall.client`: ``RecallClient`` (httpx, async)
- :mod:`pipeline_common.recall.errors`: ``RecallApiError`` (``kind``: retryable / operator / terminal) and
  ``InvalidRecallPayload``
"""

from pipeline_common.recall.errors import ErrorKind, InvalidRecallPayload, RecallApiError
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.recall.models import (
    Diarization,
    TranscriptArtifact,
    TranscriptPart,
    parse_transcript,
)
from pipeline_common.recall.providers import PROVIDER_NAMES, ProviderConfig

__all__ = [
    "PROVIDER_NAMES",
    "Diarization",
    "ErrorKind",
    "InvalidRecallPayload",
    "ProviderConfig",
    "RecallApiError",
    "TranscriptArtifact",
    "TranscriptPart",
    "WebhookEvent",
    "parse_transcript",
    "parse_webhook_event",
]
