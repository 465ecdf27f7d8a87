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
