"""SIGKILL of the Kafka node that leads the most partitions while recordings flow; it stays down for a while (the
cluster elects new leaders from the in-sync replicas), then comes back and catches up."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent, blocking, once_between
from devkit.chaos.options import log
from devkit.kafka import partition_leaders

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def kill_leader(chaos: Chaos, fraction: float) -> None:
    await chaos.at_progress(fraction)
    async with chaos.lock("kafka"):  # never on top of the whole cluster's restart
        await kill_now(chaos)


async def kill_now(chaos: Chaos) -> None:
    leaders = await partition_leaders(chaos.profile.bootstrap)
    node = max(sorted(leaders), key=lambda n: leaders[n])
    event = FaultEvent(chaos.now(), "broker-sigkill", f"kafka node {node}")
    ended = chaos.ended()
    chaos.broker_down = True
    log(f"{event.at:6.1f}s  SIGKILL kafka node {node} (leads {leaders[node]} of {sum(leaders.values())} partitions)")
    await blocking(stack.kafka, chaos.profile, "kill-node", str(node))
    # Down long enough for the controller to fence it and for every client to hit the missing leader.
    down_for = max(15.0, chaos.options.session_timeout * 1.5)
    moving_again = await chaos.first_outcome_after(event.at, down_for)
    await chaos.sleep_until(event.at + down_for)
    restart_at = chaos.now()
    await blocking(stack.kafka, chaos.profile, "start-node", str(node))
    chaos.broker_down = False
    took = chaos.now() - restart_at
    chaos.measure(
        "broker_leader_kill",
        node=node,
        leaders_before=leaders,
        first_outcome_after_kill_s=round(moving_again, 1) if moving_again is not None else None,
        down_s=round(restart_at - event.at, 1),
        rejoined_after_s=round(took, 1),
    )
    chaos.record(
        event,
        f"led {leaders[node]}/{sum(leaders.values())} partitions; at {ended}/{len(chaos.live.planned)} ended; "
        f"first outcome after the kill at +{moving_again if moving_again is None else round(moving_again, 1)}s; "
        f"down {restart_at - event.at:.1f}s, back in the cluster after {took:.1f}s",
    )
    log(f"{chaos.now():6.1f}s  kafka node {node} back ({event.detail})")


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    return once_between(chaos, chaos.options.leader_kill and chaos.options.brokers >= 2, kill_leader, 0.15, 0.35)
