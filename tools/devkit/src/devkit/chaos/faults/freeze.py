"""A transcriber replica frozen (SIGSTOP) for longer than the consumer session timeout, then resumed (SIGCONT): its
partitions move to the others meanwhile, and the zombie must not write or commit for them once it wakes (the
ledger's exactly-once checks are what catch it if it does)."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent, HarnessError, blocking, once_between
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def freeze(chaos: Chaos, fraction: float, service: str = "transcriber") -> None:
    await chaos.at_progress(fraction)
    async with chaos.lock(service):
        replicas = chaos.replicas(service)
        if not replicas:
            raise HarnessError(f"no {service} replica runs to freeze")
        process = chaos.rng.choice(replicas)
        pid = stack.running_pid(chaos.profile, process.name)
        assert pid is not None
        frozen_for = chaos.options.session_timeout * 2 + 2
        event = FaultEvent(chaos.now(), "sigstop", process.name)
        ended = chaos.ended()
        log(f"{event.at:6.1f}s  SIGSTOP {process.name} for {frozen_for:.0f}s")
        os.killpg(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(frozen_for)
        finally:
            os.killpg(pid, signal.SIGCONT)
        resumed = chaos.now()
        await blocking(stack.wait_ready, chaos.profile, [process], 300)
        chaos.record(
            event,
            f"pid {pid} frozen {frozen_for:.0f}s (session timeout {chaos.options.session_timeout:.0f}s) at "
            f"{ended}/{len(chaos.live.planned)} ended; ready again {chaos.now() - resumed:.1f}s after SIGCONT",
        )
    log(f"{chaos.now():6.1f}s  {process.name} resumed ({event.detail})")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    return once_between(chaos, chaos.options.freeze and chaos.options.replicas >= 2, freeze, 0.5, 0.7)
