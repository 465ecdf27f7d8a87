"""A worker's per-recording Table seen through one door, which keeps the due-index of scheduled retries up to date.

The retry timer runs every half second; reading the whole Table each time costs in proportion to its history. Every
write here (and only writes here) updates an in-memory index of the retries the written value schedules, so the
timer reads only what is scheduled. The index is rebuilt from the Table by :meth:`reindex` (start-up, the periodic
sweep, after a rebalance); an entry left over from a partition this worker no longer owns only sends a wake-up the
owner recognises as stale.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from datetime import datetime
from typing import Any, Final

from pipeline_common.retries import PendingRetry, RetryDue

#: Where the supervisor keeps its parked events inside a recording's value (beside the service's own fields).
SUPERVISION_KEY: Final = "supervision"
#: The retry target that wakes the supervisor's parked events (never a transcript id nor an attempt number).
PARKED_TARGET: Final = "@parked"
#: The retry target that has a recording's agent do the sweep's work for it (the timer may not write the Table).
SWEEP_TARGET: Final = "@sweep"

PendingOf = Callable[[str, Mapping[str, Any]], Iterable[PendingRetry]]


def parked_retry(key: str, value: Mapping[str, Any]) -> PendingRetry | None:
    supervision = value.get(SUPERVISION_KEY)
    if not supervision or not supervision.get("parked") or not supervision.get("due_at"):
        return None
    due = RetryDue(key, PARKED_TARGET, int(supervision["sequence"]))
    return PendingRetry(due, datetime.fromisoformat(supervision["due_at"]))


class RecordingTable:
    def __init__(self, backing: MutableMapping[str, Any], pending_of: PendingOf) -> None:
        self._backing = backing
        self._pending_of = pending_of
        self._due: dict[str, list[PendingRetry]] = {}

    def get(self, key: str) -> dict[str, Any] | None:
        value = self._backing.get(key)
        return None if value is None else dict(value)

    def put(self, key: str, value: dict[str, Any]) -> None:
        self._backing[key] = value
        self._index(key, value)

    def delete(self, key: str) -> None:
        """Remove the recording (faust sends a tombstone to the changelog, which compaction then drops)."""
        if key in self._backing:
            del self._backing[key]
        self._due.pop(key, None)

    def items(self) -> list[tuple[str, dict[str, Any]]]:
        return [(key, dict(value)) for key, value in list(self._backing.items()) if value is not None]

    def __len__(self) -> int:
        return len(self._backing)

    def __contains__(self, key: object) -> bool:
        return key in self._backing

    def pending(self) -> Iterator[PendingRetry]:
        for retries in list(self._due.values()):
            yield from retries

    def reindex(self) -> list[tuple[str, dict[str, Any]]]:
        """Rebuild the due-index from the Table; the items it read (the sweep looks at the same ones)."""
        self._due = {}
        items = self.items()
        for key, value in items:
            self._index(key, value)
        return items

    def _index(self, key: str, value: Mapping[str, Any]) -> None:
        retries = list(self._pending_of(key, value))
        parked = parked_retry(key, value)
        if parked is not None:
            retries.append(parked)
        if retries:
            self._due[key] = retries
        else:
            self._due.pop(key, None)
