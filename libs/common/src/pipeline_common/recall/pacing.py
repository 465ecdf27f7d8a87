"""Client-side pacing of Recall calls, so the pipeline slows itself before Recall has to answer 429.

Recall documents its limits per endpoint: Create Async Transcript about 5 a minute per bot, Retrieve Transcript 300 a
minute and List Transcripts 60 a minute per workspace, Delete Transcript 300 a minute. One :class:`RecallPacer` lives
in each :class:`~pipeline_common.recall.client.RecallClient`, so a worker's agents share it.

Each limit is a sliding window (at most N calls in any window of 60 s): a token bucket that refills a minute's quota
would allow up to twice the limit within one sliding minute, and one without a burst would serialise every call. A
call that would exceed the window is given the earliest time that keeps it under, and waits for it; callers queue in
arrival order. The limits are per worker: with several replicas, divide them (see docs/configuration.md).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Final, Protocol

from pipeline_common.logging import get_logger

__all__ = ["Operation", "RecallPacer", "SlidingWindow"]

log = get_logger("pipeline_common.recall.pacing")
WINDOW_SECONDS: Final = 60.0
MAX_KEYS: Final = 10_000  # per-bot windows kept; the least recently used go first


class Operation(StrEnum):
    CREATE = "create_transcript"  # per bot
    RETRIEVE = "retrieve_transcript"  # per workspace
    LIST = "list_transcripts"  # per workspace
    DELETE = "delete_transcript"  # per workspace


class PacingSettings(Protocol):
    @property
    def recall_pace_create_per_bot_per_minute(self) -> int: ...
    @property
    def recall_pace_retrieve_per_minute(self) -> int: ...
    @property
    def recall_pace_list_per_minute(self) -> int: ...
    @property
    def recall_pace_delete_per_minute(self) -> int: ...


class SlidingWindow:
    """At most ``limit`` grants in any ``window_seconds``; :meth:`reserve` says how long to wait for the next one."""

    def __init__(self, limit: int, window_seconds: float = WINDOW_SECONDS, *, clock: Callable[[], float]) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("a window needs a limit of at least 1 and a positive length")
        self.limit = limit
        self._window = window_seconds
        self._clock = clock
        self._grants: deque[float] = deque()  # non-decreasing; the last may lie in the future (queued callers)

    def reserve(self) -> float:
        now = self._clock()
        while self._grants and self._grants[0] <= now - self._window:
            self._grants.popleft()
        at = max(now, self._grants[-1]) if self._grants else now
        if len(self._grants) >= self.limit and self._grants[-self.limit] > at - self._window:
            at = self._grants[-self.limit] + self._window
        self._grants.append(at)
        return at - now

    def idle(self) -> bool:
        """No grant in the last window (nor queued): the window paces nothing, a fresh one would do the same."""
        return not self._grants or self._grants[-1] <= self._clock() - self._window


class RecallPacer:
    def __init__(
        self,
        *,
        create_per_bot_per_minute: int = 0,
        retrieve_per_minute: int = 0,
        list_per_minute: int = 0,
        delete_per_minute: int = 0,
        window_seconds: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        """A limit of 0 leaves that operation unpaced."""
        self._limits = {
            Operation.CREATE: create_per_bot_per_minute,
            Operation.RETRIEVE: retrieve_per_minute,
            Operation.LIST: list_per_minute,
            Operation.DELETE: delete_per_minute,
        }
        self._window = window_seconds
        self._clock = clock
        self._sleep = sleep
        self._windows: OrderedDict[tuple[Operation, str], SlidingWindow] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: PacingSettings) -> RecallPacer:
        return cls(
            create_per_bot_per_minute=settings.recall_pace_create_per_bot_per_minute,
            retrieve_per_minute=settings.recall_pace_retrieve_per_minute,
            list_per_minute=settings.recall_pace_list_per_minute,
            delete_per_minute=settings.recall_pace_delete_per_minute,
        )

    def limit(self, operation: Operation) -> int | None:
        return self._limits[operation] or None

    def __len__(self) -> int:
        """Windows kept: those with a grant in the last window (the bots of the last minute), never the history."""
        return len(self._windows)

    def _forget_idle(self) -> None:
        # Least recently used first: stop at the first window still pacing (a later one may be idle too; it goes on
        # a later call). Without this, one window per bot ever seen stayed, up to MAX_KEYS (~1 KiB each).
        while self._windows and next(iter(self._windows.values())).idle():
            self._windows.popitem(last=False)

    async def wait(self, operation: Operation, key: str | None = None) -> float:
        """Wait until ``operation`` (for bot ``key``, if it is paced per bot) may be called; return the wait."""
        limit = self._limits[operation]
        if not limit:
            return 0.0
        self._forget_idle()
        slot = (operation, key or "" if operation is Operation.CREATE else "")
        window = self._windows.get(slot)
        if window is None:
            window = self._windows[slot] = SlidingWindow(limit, self._window, clock=self._clock)
            if len(self._windows) > MAX_KEYS:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(slot)
        delay = window.reserve()
        if delay > 0:
            log.debug("pacing a Recall call", operation=operation.value, wait_seconds=round(delay, 3))
            await self._sleep(delay)
        return delay
