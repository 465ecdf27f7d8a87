"""The faults of a chaos run.

Two kinds: *windows* (:mod:`.windows`), which the simulator runs while they are open, and *discrete* faults, each a
module with a ``scheduled(chaos) -> list[Awaitable[None]]`` that returns the tasks it wants run during the feed (none
when its option is off). A new discrete fault is one such module, one entry in :data:`DISCRETE` and its option in
:mod:`devkit.chaos.options`. Faults that pick recordings before the feed go into :data:`PREPARE`; settings a fault
needs on a worker process, into :func:`worker_env`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import httpx

from devkit.chaos.faults import (
    broker,
    failover,
    freeze,
    kills,
    leader_kill,
    lost,
    rolling,
    scaling,
    slow,
    store,
    workers,
)

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos
    from devkit.chaos.options import Options

#: Every discrete fault, in the order their tasks are started.
DISCRETE: list[Callable[[Chaos], list[Awaitable[None]]]] = [
    kills.scheduled,
    broker.scheduled,
    leader_kill.scheduled,
    rolling.scheduled,
    scaling.scheduled,
    freeze.scheduled,
    failover.scheduled,
    workers.scheduled,
    store.scheduled,
]
#: Faults chosen before the feed (what Recall will do to particular recordings).
PREPARE: list[Callable[[Chaos, httpx.AsyncClient], Awaitable[None]]] = [lost.prepare, slow.prepare]


async def prepare(chaos: Chaos, sim: httpx.AsyncClient) -> None:
    for step in PREPARE:
        await step(chaos, sim)


def worker_env(options: Options) -> dict[str, dict[str, str]]:
    """The settings the faults need on each worker process (name -> variables)."""
    env: dict[str, dict[str, str]] = {}
    for part in (
        workers.worker_env(options.worker_exceptions),
        lost.worker_env(options.lost_webhooks or options.slow_transcripts),
    ):
        for name, variables in part.items():
            env.setdefault(name, {}).update(variables)
    return env


def schedule(chaos: Chaos) -> list[Awaitable[None]]:
    """The discrete faults' tasks for this run (their times drawn from the run's seeded random)."""
    return [task for scheduled in DISCRETE for task in scheduled(chaos)]
