"""What the distributed faults do to one replica, the way Kubernetes does it: SIGTERM and wait up to the
Deployment's ``terminationGracePeriodSeconds`` (then SIGKILL, and the run fails), start and wait until ready."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from functools import cache
from typing import TYPE_CHECKING

from devkit import ROOT, stack
from devkit.chaos.faults.base import HarnessError, blocking

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

GRACE_PATTERN = re.compile(r"terminationGracePeriodSeconds:\s*(\d+)")


@cache
def grace_seconds(service: str) -> float:
    """The grace period the manifests give ``service`` (deploy/base/<service>/deployment.yaml): the harness
    holds a replica to the same limit Kubernetes would."""
    manifest = ROOT / "deploy" / "base" / service / "deployment.yaml"
    found = GRACE_PATTERN.search(manifest.read_text())
    if found is None:
        raise HarnessError(f"{manifest} sets no terminationGracePeriodSeconds")
    return float(found.group(1))


async def terminate(chaos: Chaos, process: stack.Process) -> tuple[float, int | None]:
    """SIGTERM one replica and wait for it to exit: (seconds it took, exit status). Past the grace period it is
    SIGKILLed, as the kubelet would, and that is a harness error (its shutdown does not fit the manifest)."""
    pid = stack.running_pid(chaos.profile, process.name)
    if pid is None:
        raise HarnessError(f"{process.name} is not running when it should be stopped")
    grace = grace_seconds(process.service)
    started = time.monotonic()
    os.killpg(pid, signal.SIGTERM)
    status = await asyncio.to_thread(wait_exit, process, pid, grace)
    took = time.monotonic() - started
    stack.pid_file(chaos.profile, process.name).unlink(missing_ok=True)
    if status is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        raise HarnessError(f"{process.name} did not exit within its grace period of {grace:.0f}s after SIGTERM")
    return took, status


def wait_exit(process: stack.Process, pid: int, timeout: float) -> int | None:
    """The exit status, or None when it is still running after ``timeout``."""
    if process.popen is not None and process.popen.pid == pid:
        try:
            return process.popen.wait(timeout)
        except Exception:  # subprocess.TimeoutExpired
            return None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return 0
        time.sleep(0.1)
    return None


async def start_ready(chaos: Chaos, process: stack.Process, restarts: int = 5) -> float:
    """Start one replica (it joins ``chaos.processes``) and wait until it is ready: the seconds it took. A replica
    that exits during start-up is started again after a back-off, as the kubelet restarts a crashed container (each
    crash goes into the ledger's measurements: a worker that cannot start while a broker is away is a finding)."""
    started = time.monotonic()
    chaos.processes[process.name] = process
    for attempt in range(restarts + 1):
        stack.start(chaos.profile, process)
        try:
            await blocking(stack.wait_ready, chaos.profile, [process], 300)
            return time.monotonic() - started
        except HarnessError as error:
            if stack.running_pid(chaos.profile, process.name) is not None or attempt == restarts:
                raise
            last_line = str(error).strip().splitlines()[-1][-300:]
            chaos.measure("start_crashes", replica=process.name, at_s=round(chaos.now(), 1), last_log_line=last_line)
            stack.pid_file(chaos.profile, process.name).unlink(missing_ok=True)
            await asyncio.sleep(min(10.0, 2.0**attempt))
    raise AssertionError("unreachable")
