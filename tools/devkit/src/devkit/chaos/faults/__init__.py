"""The faults of a chaos run.

Two kinds: *windows* (:mod:`.windows`), which the simulator runs while they are open, and *discrete* faults, each a
module with a ``scheduled(chaos) -> list[Awaitable[None]]`` that returns the tasks it wants run during the feed (none
when its option is off). A new discrete fault is one such module, one entry in :data:`DISCRETE` and its option in
:mod:`devkit.chaos.options`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from devkit.chaos.faults import broker, failover, freeze, kills, leader_kill, rolling, scaling

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

#: Every discrete fault, in the order their tasks are started.
DISCRETE: list[Callable[[Chaos], list[Awaitable[None]]]] = [
    kills.scheduled,
    broker.scheduled,
    leader_kill.scheduled,
    rolling.scheduled,
    scaling.scheduled,
    freeze.scheduled,
    failover.scheduled,
]


def schedule(chaos: Chaos) -> list[Awaitable[None]]:
    """The discrete faults' tasks for this run (their times drawn from the run's seeded random)."""
    return [task for scheduled in DISCRETE for task in scheduled(chaos)]
