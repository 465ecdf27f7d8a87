"""Which provider the next attempt uses, and how long a failed create waits before it is tried again.

Plain functions over the recording's state and the policy: no Kafka, no HTTP, no clock of their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline_common.recall.models import Diarization
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.worker.backoff import Backoff
from transcriber.settings import RECALL_TRANSCRIPT_LIMIT, TranscriberSettings
from transcriber.state import RecordingState


@dataclass(frozen=True)
class Policy:
    chain: tuple[ProviderConfig, ...]
    diarization: Diarization
    retry_same_provider_on: frozenset[str]
    max_attempts: int
    retry_base_seconds: float
    retry_max_seconds: float
    operator_retry_seconds: float
    operator_retry_max_seconds: float
    idempotency_prefix: str
    firewall_max_retries: int = 3
    #: Retryable create failures (5xx, 409, lost or unparseable replies) are bounded in count and in time.
    max_create_failures: int = 30
    give_up_seconds: float = 6 * 3600.0
    #: Recall replays an Idempotency-Key for one hour; a create repeated later first looks for what exists.
    idempotency_window_seconds: float = 3300.0

    @classmethod
    def from_settings(cls, settings: TranscriberSettings) -> Policy:
        return cls(
            chain=tuple(settings.transcriber_providers),
            diarization=settings.transcriber_diarization,
            retry_same_provider_on=frozenset(settings.transcriber_retry_same_provider_on),
            max_attempts=min(settings.transcriber_max_attempts, RECALL_TRANSCRIPT_LIMIT),
            retry_base_seconds=settings.transcriber_retry_base_seconds,
            retry_max_seconds=settings.transcriber_retry_max_seconds,
            operator_retry_seconds=settings.transcriber_operator_retry_seconds,
            operator_retry_max_seconds=settings.transcriber_operator_retry_max_seconds,
            idempotency_prefix=settings.transcriber_idempotency_prefix,
            firewall_max_retries=settings.transcriber_firewall_max_retries,
            max_create_failures=settings.transcriber_max_create_failures,
            give_up_seconds=settings.transcriber_give_up_seconds,
            idempotency_window_seconds=settings.transcriber_idempotency_window_seconds,
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


def retry_delay(failures: int, retry_after: float | None, policy: Policy, rng: random.Random) -> float:
    """Exponential backoff with jitter for a retryable create failure; never sooner than Recall's Retry-After."""
    return Backoff(policy.retry_base_seconds, policy.retry_max_seconds).delay(failures, rng, retry_after)


def operator_retry_delay(failures: int, policy: Policy) -> float:
    """Credentials or billing refused (401/402): a slow, capped pace until an operator fixes it."""
    return Backoff(policy.operator_retry_seconds, policy.operator_retry_max_seconds).slow(failures)
