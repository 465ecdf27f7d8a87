"""SIGKILL of ingest, transcriber and fetcher (``--kills`` each), each restarted and waited for until ready."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent, HarnessError
from devkit.chaos.faults.pods import start_ready
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def kill_and_restart(chaos: Chaos, name: str, when: float) -> None:
    if name == "ingest":
        await chaos.sleep_until(when)  # ingest's work is the webhooks: a moment while Recall is sending them
    else:
        await chaos.at_progress(when)  # a consumer's work is the backlog: a point of the run's progress
    async with chaos.lock(name):  # not in the middle of a rolling restart or a scaling of the same service
        await kill_now(chaos, name)


async def kill_now(chaos: Chaos, name: str) -> None:
    process = chaos.processes[name]
    pid = stack.running_pid(chaos.profile, name)
    if pid is None:
        raise HarnessError(f"{name} is not running when it should be killed")
    event = FaultEvent(chaos.now(), "sigkill", name)
    ended = chaos.ended()
    os.killpg(pid, signal.SIGKILL)
    if process.popen is not None:
        await asyncio.to_thread(process.popen.wait)
    stack.pid_file(chaos.profile, name).unlink(missing_ok=True)
    # Started again as the kubelet would: a start that crashes (a broker away) is retried with back-off.
    await start_ready(chaos, process)
    took = chaos.now() - event.at
    chaos.record(event, f"pid {pid} at {ended}/{len(chaos.live.planned)} recordings ended; ready after {took:.1f}s")
    log(f"{event.at:6.1f}s  SIGKILL {name} ({event.detail})")


async def killer(chaos: Chaos, name: str, moments: list[float]) -> None:
    for when in moments:
        await kill_and_restart(chaos, name, when)


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    """Each killable service's kills: ingest's at random moments of the feed (its work is the webhooks), the
    consumers' at random points of the run's progress (their work is the backlog)."""
    if not chaos.options.kill:
        return []
    tasks: list[Awaitable[None]] = []
    for name in chaos.options.kill_services:
        if name == "ingest":
            moments = [chaos.rng.uniform(0.05, 0.9) * chaos.options.feed for _ in range(chaos.options.kills)]
        else:
            moments = [chaos.rng.uniform(0.02, 0.85) for _ in range(chaos.options.kills)]
        tasks.append(killer(chaos, name, sorted(moments)))
    return tasks
