"""A bounded, time-limited memory of webhook ids already written, so a Recall retry is not produced twice.

Per replica only: replicas do not share it, so consumers stay idempotent regardless.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable


class RecentDeliveries:
    def __init__(self, window_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_seconds
        self._max = max_entries
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def seen(self, webhook_id: str) -> bool:
        self._expire()
        return webhook_id in self._seen

    def remember(self, webhook_id: str) -> None:
        if self._max == 0 or self._window == 0:
            return
        self._seen[webhook_id] = self._clock()
        self._seen.move_to_end(webhook_id)
        while len(self._seen) > self._max:
            self._seen.popitem(last=False)

    def _expire(self) -> None:
        cutoff = self._clock() - self._window
        while self._seen:
            oldest_id, written_at = next(iter(self._seen.items()))
            if written_at >= cutoff:
                break
            del self._seen[oldest_id]
