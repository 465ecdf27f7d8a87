"""Which provider the next attempt uses; how long a failed create waits (:class:`Policy`'s retry schedule).

Plain functions over the recording's state and the policy: no Kafka, no HTTP, no clock of their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline_common.recall.models import Diarization
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.worker.backoff import RetrySchedule
from transcriber.settings import RECALL_TRANSCRIPT_LIMIT, TranscriberSettings
from transcriber.state import RecordingState


@dataclass(frozen=True)
class Policy(RetrySchedule):
    chain: tuple[ProviderConfig, ...]
    diarization: Diarization
    retry_same_provider_on: frozenset[str]
    max_attempts: int
    idempotency_prefix: str
    firewall_max_retries: int = 3
    #: Retryable create failures (5xx, 409, lost or unparseable replies) are bounded in count and in time.
    max_create_failures: int = 30
    give_up_seconds: float = 6 * 3600.0
    #: Recall replays an Idempotency-Key for one hour; a create repeated later first looks for what exists.
    idempotency_window_seconds: float = 3300.0

    @classmethod
    def from_settings(cls, settings: TranscriberSettings) -> Policy:
        """The ``TRANSCRIBER_`` variables of the same names, and the chain."""
        return settings.own(
            cls,
            chain=tuple(settings.transcriber_providers),
            diarization=settings.transcriber_diarization,
            retry_same_provider_on=frozenset(settings.transcriber_retry_same_provider_on),
            max_attempts=min(settings.transcriber_max_attempts, RECALL_TRANSCRIPT_LIMIT),
        )

    def idempotency_key(self, recording_id: str, attempt: int) -> str:
        """Stable per (recording, attempt): every retry of one attempt's create carries the same key."""
        return f"{self.idempotency_prefix}-{recording_id}-attempt-{attempt}"

    def create_metadata(self, recording_id: str, attempt: int) -> dict[str, str]:
        """Metadata Recall echoes on the transcript's webhooks: how we recognise our attempts without the id."""
        return {"pipeline": self.idempotency_prefix, "pipeline_attempt": str(attempt), "recording_id": recording_id}


def next_provider_index(state: RecordingState, policy: Policy, sub_code: str | None) -> int | None:
    """The chain position for the attempt after the current one failed with ``sub_code``; None when exhausted.

    A failure the provider is likely to recover from (configured sub_codes) gets one more try on the same provider,
    then the chain moves on. Never more attempts than the policy allows, never more than Recall's limit of 10.
    """
    current = state.current
    if current is None:
        return 0
    if len(state.attempts) >= policy.max_attempts:
        return None
    same_provider_tries = sum(1 for attempt in state.attempts if attempt.provider_index == current.provider_index)
    if sub_code is not None and sub_code in policy.retry_same_provider_on and same_provider_tries < 2:
        return current.provider_index
    following = current.provider_index + 1
    return following if following < len(policy.chain) else None
