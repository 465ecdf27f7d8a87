"""One lock per recording, shared by every agent and timer of a worker: a recording's state is read, awaited on and
written back by one handler at a time, so no handler builds new state from a snapshot another has since replaced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            # Forget the lock with its last user: the map holds only the keys in hand, never the history.
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    def busy(self, key: str) -> bool:
        """Someone holds or waits for ``key``: a sweep passes it by rather than queue behind a long download."""
        return key in self._users

    def __len__(self) -> int:
        return len(self._locks)
