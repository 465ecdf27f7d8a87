"""What the kubelet does and the harness must too: a replica that exits on its own (a crash, not a fault's stop) is
started again. Each such restart goes into the ledger (faults, kind ``crash-restart``, with the replica's last log
line) and its measurements: a crash under rebalances is a finding, even when the ledger balances."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from devkit import stack
from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.faults.pods import start_ready
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


def last_line(chaos: Chaos, name: str) -> str:
    path = chaos.profile.logs / f"{name}.log"
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if "Error" in line]
    except OSError:
        return ""
    return lines[-1][-300:] if lines else ""


async def restart_crashed(chaos: Chaos, until: asyncio.Event) -> None:
    while not until.is_set():
        for process in list(chaos.processes.values()):
            lock = chaos.lock(process.service)
            if process.service == "recall_sim" or lock.locked():
                continue  # a fault is acting on this service: what is down is down on purpose
            async with lock:
                if process.name not in chaos.processes or stack.running_pid(chaos.profile, process.name):
                    continue
                event = FaultEvent(chaos.now(), "crash-restart", process.name)
                why = last_line(chaos, process.name)
                stack.pid_file(chaos.profile, process.name).unlink(missing_ok=True)
                log(f"{event.at:6.1f}s  [yellow]{process.name} exited on its own; restarting it[/] ({why})")
                took = await start_ready(chaos, process)
                chaos.measure("crash_restarts", replica=process.name, at_s=round(event.at, 1), last_error=why)
                chaos.record(event, f"exited on its own ({why}); ready again after {took:.1f}s")
        try:
            await asyncio.wait_for(until.wait(), 1.0)
        except TimeoutError:
            continue
