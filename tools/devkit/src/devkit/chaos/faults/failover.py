"""Failover, measured: SIGKILL of one transcriber replica (left down), then the time until its consumer group has
rebalanced without it (its partitions assigned to a live replica) and until the next recording ended after that;
then it is started again."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent, HarnessError, once_between
from devkit.chaos.faults.pods import start_ready
from devkit.chaos.options import log
from devkit.kafka import group_state

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def rebalanced(chaos: Chaos, group: str, members: int, within: float) -> float | None:
    """Seconds until ``group`` is Stable with exactly ``members`` members (None past ``within`` seconds)."""
    started = time.monotonic()
    while time.monotonic() - started < within:
        with contextlib.suppress(Exception):  # a coordinator moving is one more reason to ask again
            state, count = await group_state(chaos.profile.bootstrap, group)
            if state == "Stable" and count == members:
                return time.monotonic() - started
        await asyncio.sleep(0.25)
    return None


async def fail_over(chaos: Chaos, fraction: float, service: str = "transcriber") -> None:
    await chaos.at_progress(fraction)
    async with chaos.lock(service):
        replicas = chaos.replicas(service)
        if len(replicas) < 2:
            raise HarnessError(f"failover needs two {service} replicas, {len(replicas)} run")
        process = chaos.rng.choice(replicas)
        pid = stack.running_pid(chaos.profile, process.name)
        assert pid is not None
        event = FaultEvent(chaos.now(), "failover", process.name)
        ended = chaos.ended()
        os.killpg(pid, signal.SIGKILL)
        if process.popen is not None:
            await asyncio.to_thread(process.popen.wait)
        stack.pid_file(chaos.profile, process.name).unlink(missing_ok=True)
        moved = await rebalanced(chaos, service, len(replicas) - 1, chaos.options.session_timeout * 6 + 30)
        moving: float | None = None
        if moved is not None:
            after = await chaos.first_outcome_after(event.at + moved, 60)
            moving = moved + after if after is not None else None
        ready = await start_ready(chaos, process)
        chaos.measure(
            "failover",
            replica=process.name,
            session_timeout_s=chaos.options.session_timeout,
            rebalanced_after_s=round(moved, 1) if moved is not None else None,
            first_outcome_after_s=round(moving, 1) if moving is not None else None,
            restarted_ready_after_s=round(ready, 1),
        )
        chaos.record(
            event,
            f"pid {pid} at {ended}/{len(chaos.live.planned)} ended; group rebalanced without it "
            + (f"after {moved:.1f}s" if moved is not None else "never")
            + (
                f", next recording ended {moving:.1f}s after the kill"
                if moving is not None
                else ", no recording ended within 60s of the rebalance"
            )
            + f"; restarted, ready after {ready:.1f}s",
        )
    log(f"{event.at:6.1f}s  failover of {process.name}: {event.detail}")
    if moved is None:
        raise HarnessError(f"{service}'s group did not rebalance without {process.name}")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    return once_between(chaos, chaos.options.failover and chaos.options.replicas >= 2, fail_over, 0.65, 0.85)
