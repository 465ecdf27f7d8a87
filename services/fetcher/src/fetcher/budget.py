"""How much transcript the fetcher validates and renders at once.

Downloads are spooled to disk and cost little memory, so many transcripts can be in flight (``FETCHER_CONCURRENCY``:
most of a small transcript's time is waiting on Recall, the store and Kafka). Validating and rendering one holds
about 1.5 times its size in memory, so that step takes a share of a byte budget (``FETCHER_ANALYSIS_BUDGET_BYTES``)
first: small transcripts share it freely, large ones wait their turn, and one larger than the whole budget runs alone.
Analysis holds the GIL for most of its time, so more of it at once buys no speed (docs/fetcher.md, "Bounded memory").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator


class ByteBudget:
    """At most ``limit`` bytes of work at once, granted in arrival order (a large piece is not overtaken for ever by a
    stream of small ones); a piece larger than ``limit`` counts as ``limit``, so it runs alone instead of never."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a byte budget needs a limit of at least 1 byte")
        self.limit = limit
        self.in_use = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    def weight(self, size: int) -> int:
        return min(max(size, 1), self.limit)

    @contextlib.asynccontextmanager
    async def hold(self, size: int) -> AsyncIterator[None]:
        weight = self.weight(size)
        if self._waiting or self.in_use + weight > self.limit:
            await self._wait(weight)
        else:
            self.in_use += weight
        try:
            yield
        finally:
            self._release(weight)

    async def _wait(self, weight: int) -> None:
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (weight, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self._release(weight)  # granted, then cancelled before it could start: give the share back
            else:
                with contextlib.suppress(ValueError):  # already dropped by _grant
                    self._waiting.remove(entry)
                self._grant()  # it may have been first in line, holding back the ones behind it
            raise

    def _release(self, weight: int) -> None:
        self.in_use -= weight
        self._grant()

    def _grant(self) -> None:
        while self._waiting and self.in_use + self._waiting[0][0] <= self.limit:
            weight, turn = self._waiting.popleft()
            if turn.cancelled():  # its task was cancelled and has not run its cleanup yet
                continue
            self.in_use += weight
            turn.set_result(None)
