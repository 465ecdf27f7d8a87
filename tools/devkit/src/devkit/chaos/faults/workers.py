"""Unforeseen exceptions inside both workers: ``TRANSCRIBER_FAULT_PROBABILITY`` / ``FETCHER_FAULT_PROBABILITY`` set
on the processes the run starts (devkit.stack strips them from the inherited environment), for the whole run. The
ledger counts, from the workers' logs (appended across restarts, unlike their metrics), how many events were parked
and handled again; the outcome checks still require every recording to end exactly once."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit.chaos.faults.base import FaultEvent

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

#: Per handled event. Low enough that five in a row on one recording (its give-up) is out of reach.
PROBABILITY = 0.05
WORKERS = ("transcriber", "fetcher")


def worker_env(enabled: bool) -> dict[str, dict[str, str]]:
    """The settings each worker gets (none when the fault is off)."""
    if not enabled:
        return {}
    return {name: {f"{name.upper()}_FAULT_PROBABILITY": str(PROBABILITY)} for name in WORKERS}


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    if chaos.options.worker_exceptions:
        # A setting, not a task: on for the whole run (its window closes when the ledger is drawn).
        chaos.events.append(
            FaultEvent(
                0.0,
                "worker-exceptions",
                ",".join(WORKERS),
                f"each handler raises InjectedFault with probability {PROBABILITY} (whole run, drain included)",
            )
        )
    return []
