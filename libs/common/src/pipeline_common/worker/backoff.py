"""How long a failed step waits before it is tried again, and what time it is (one clock for both workers)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter, capped; never sooner than a ``Retry-After``."""

    base_seconds: float
    max_seconds: float

    def delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2 ** min(max(failures, 1) - 1, 30))
        backoff = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None and retry_after > 0:
            # Spread the keys that got the same Retry-After so they do not all come back in the same second.
            return float(max(backoff, retry_after * (1 + rng.uniform(0, 0.1))))
        return float(backoff)

    def slow(self, failures: int) -> float:
        """No jitter, for the slow pace of an operator problem (credentials, billing): predictable for whoever fixes
        it."""
        return float(min(self.max_seconds, self.base_seconds * 2 ** min(max(failures, 1) - 1, 30)))


@dataclass(frozen=True)
class RetrySchedule:
    """When a failed step is tried again, in the same words in both workers (each reads them from its own
    ``<PREFIX>_RETRY_BASE_SECONDS``, ``..._RETRY_MAX_SECONDS``, ``..._OPERATOR_RETRY_SECONDS`` and
    ``..._OPERATOR_RETRY_MAX_SECONDS``). A worker's policy extends it with its own bounds."""

    retry_base_seconds: float
    retry_max_seconds: float
    operator_retry_seconds: float
    operator_retry_max_seconds: float

    @property
    def backoff(self) -> Backoff:
        return Backoff(self.retry_base_seconds, self.retry_max_seconds)

    def retry_delay(self, failures: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter for a retryable failure; never sooner than Recall's Retry-After."""
        return self.backoff.delay(failures, rng, retry_after)

    def operator_retry_delay(self, failures: int) -> float:
        """Credentials or billing refused (401/402/403): a slow, capped pace until an operator fixes it."""
        return Backoff(self.operator_retry_seconds, self.operator_retry_max_seconds).slow(failures)
