"""A rolling restart of each service, the way a Deployment rolls: one replica at a time, SIGTERM, wait for it to
exit within its grace period, start it again, wait until ready, then the next."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.faults.pods import grace_seconds, start_ready, terminate
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

SERVICES = ("ingest", "transcriber", "fetcher")


async def roll(chaos: Chaos, service: str, fraction: float) -> None:
    await chaos.at_progress(fraction)
    async with chaos.lock(service):
        event = FaultEvent(chaos.now(), "rolling-restart", service)
        ended = chaos.ended()
        steps = []
        for process in [p for p in chaos.processes.values() if p.service == service]:
            if stack.running_pid(chaos.profile, process.name) is None:
                # Exited on its own meanwhile: Kubernetes would just start it again, and so does the roll.
                steps.append(f"{process.name} had exited on its own, started again")
                await start_ready(chaos, process)
                continue
            took, status = await terminate(chaos, process)
            ready = await start_ready(chaos, process)
            chaos.measure(
                "graceful_stop",
                replica=process.name,
                stopped_in_s=round(took, 1),
                grace_s=grace_seconds(service),
                exit_status=status,
                ready_again_after_s=round(ready, 1),
            )
            steps.append(f"{process.name} stopped in {took:.1f}s (exit {status}), ready {ready:.1f}s later")
        chaos.record(
            event,
            f"at {ended}/{len(chaos.live.planned)} ended; grace {grace_seconds(service):.0f}s; " + "; ".join(steps),
        )
    log(f"{event.at:6.1f}s  rolling restart of {service}: {event.detail}")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    if not chaos.options.rolling_restart or chaos.options.replicas < 2:
        return []
    return [roll(chaos, service, chaos.rng.uniform(0.35, 0.6)) for service in SERVICES]
