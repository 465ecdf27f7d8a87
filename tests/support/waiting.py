"""Wait on a condition with a deadline: the only way tests synchronise (never a bare sleep)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class ConditionTimeout(AssertionError):
    pass


async def wait_for(
    condition: Callable[[], Awaitable[T | None] | T | None],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy; return it. Fail with ``message`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        outcome = condition()
        if asyncio.iscoroutine(outcome) or isinstance(outcome, Awaitable):
            outcome = await outcome
        if outcome:
            return outcome  # type: ignore[return-value]
        last = outcome
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"{message} not met within {timeout:.0f}s (last value: {last!r})")
        await asyncio.sleep(interval)


def wait_for_sync(
    condition: Callable[[], T | None], *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        outcome = condition()
        if outcome:
            return outcome
        if time.monotonic() >= deadline:
            raise ConditionTimeout(f"{message} not met within {timeout:.0f}s (last value: {outcome!r})")
        time.sleep(interval)
