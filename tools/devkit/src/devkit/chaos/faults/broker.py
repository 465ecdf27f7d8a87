"""One restart of the Kafka broker (stop, start; every node of a cluster) at a random point of the run's progress."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent, blocking, once_between
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def restart_broker(chaos: Chaos, fraction: float) -> None:
    await chaos.at_progress(fraction)
    async with chaos.lock("kafka"):  # never on top of a node's kill (distributed mode)
        await restart_now(chaos)


async def restart_now(chaos: Chaos) -> None:
    event = FaultEvent(chaos.now(), "broker-restart", "kafka")
    ended = chaos.ended()
    chaos.broker_down = True
    log(f"{event.at:6.1f}s  stopping the broker")
    try:
        await blocking(stack.kafka, chaos.profile, "stop")
        stopped = chaos.now()
        await blocking(stack.kafka, chaos.profile, "start")
    finally:
        chaos.broker_down = False
    await blocking(stack.wait_ready, chaos.profile, [chaos.processes["ingest"]], 300)
    down, took = stopped - event.at, chaos.now() - event.at
    chaos.record(event, f"at {ended}/{len(chaos.live.planned)} ended; stopped in {down:.1f}s, ready after {took:.1f}s")
    log(f"{event.until:6.1f}s  broker back ({event.detail})")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    return once_between(chaos, chaos.options.broker_restart, restart_broker, 0.3, 0.6)
