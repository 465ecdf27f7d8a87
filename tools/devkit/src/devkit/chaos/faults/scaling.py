"""The fetcher scaled out to 3 replicas and back in mid-run (KEDA on lag does this): two rebalances while
downloads are in flight; the replicas scaled in are SIGTERMed and must exit within their grace period."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.faults.pods import start_ready, terminate
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

SCALE_TO = 3


async def scale(chaos: Chaos, out_at: float, in_at: float) -> None:
    await chaos.at_progress(out_at)
    async with chaos.lock("fetcher"):
        event = FaultEvent(chaos.now(), "scale-fetcher", "fetcher")
        first = chaos.processes["fetcher"]
        before = len(chaos.replicas("fetcher"))
        added = [stack.replica(chaos.profile, first, index) for index in range(before + 1, SCALE_TO + 1)]
        for process in added:
            await start_ready(chaos, process)
        out_took = chaos.now() - event.at
    log(f"{chaos.now():6.1f}s  fetcher scaled {before} -> {before + len(added)} in {out_took:.1f}s")
    await chaos.at_progress(in_at)
    async with chaos.lock("fetcher"):
        stops = []
        for process in reversed(added):
            if stack.running_pid(chaos.profile, process.name) is None:
                continue
            took, status = await terminate(chaos, process)
            del chaos.processes[process.name]
            stops.append(f"{process.name} stopped in {took:.1f}s (exit {status})")
    chaos.record(
        event,
        f"{before} -> {before + len(added)} replicas (ready in {out_took:.1f}s), back to {before} at "
        f"{chaos.ended()}/{len(chaos.live.planned)} ended: " + "; ".join(stops),
    )
    log(f"{chaos.now():6.1f}s  fetcher scaled back to {before} ({'; '.join(stops)})")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    if not chaos.options.scale_fetcher or chaos.options.replicas < 2:
        return []
    out_at = chaos.rng.uniform(0.05, 0.25)
    return [scale(chaos, out_at, out_at + 0.25)]
