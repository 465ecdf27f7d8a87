"""What every fault shares: its record in the ledger, and running the stack's blocking helpers from the run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


class HarnessError(Exception):
    pass


def blocking(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """Run one of stack's blocking helpers in a thread; its SystemExit becomes an ordinary error."""

    def call() -> Any:
        try:
            return function(*args)
        except SystemExit as exit_:
            raise HarnessError(str(exit_)) from None

    return asyncio.to_thread(call)


def once_between(
    chaos: Chaos, enabled: bool, fault: Callable[[Chaos, float], Awaitable[None]], low: float, high: float
) -> list[Awaitable[None]]:
    """A fault's ``scheduled``: the fault once, at a random point of the run's progress between ``low`` and ``high``,
    when ``enabled`` (the point is drawn only then, so switching one fault off leaves the others' draws alone)."""
    return [fault(chaos, chaos.rng.uniform(low, high))] if enabled else []


@dataclass
class FaultEvent:
    at: float  # seconds since the feed started
    kind: str
    target: str
    detail: str = ""
    until: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at, 2),
            "kind": self.kind,
            "target": self.target,
            "until_s": round(self.until, 2) if self.until is not None else None,
            "detail": self.detail,
        }
