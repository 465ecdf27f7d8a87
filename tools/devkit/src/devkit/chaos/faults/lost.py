"""Lost webhooks: Recall never delivers some recordings' ``transcript.done``/``transcript.failed`` (the
transcriber's deadline sweep must end them: it asks Recall) nor some recordings' ``recording.done`` (only the
reconciler finds those: ``recall-pipeline reconcile`` runs every few seconds during the drain). Chosen before the
feed (``POST /admin/lost-webhooks``), so the simulator records those deliveries as ``lost`` from the start."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections import Counter
from typing import TYPE_CHECKING, Any

import httpx

from devkit import ROOT
from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

TRANSCRIPT_EVENTS = ("transcript.done", "transcript.failed")
RECORDING_EVENTS = ("recording.done",)
#: The transcriber's deadline and sweep in a chaos run (production: 1800 s / 60 s), so a lost transcript.done is
#: looked up at Recall within the run.
DEADLINE_SECONDS = 25
SWEEP_SECONDS = 5
RECONCILE_EVERY_SECONDS = 10.0


def worker_env(chaos_deadlines: bool) -> dict[str, dict[str, str]]:
    if not chaos_deadlines:
        return {}
    return {
        "transcriber": {
            "TRANSCRIBER_DEADLINE_SECONDS": str(DEADLINE_SECONDS),
            "TRANSCRIBER_SWEEP_SECONDS": str(SWEEP_SECONDS),
        }
    }


def choose(chaos: Chaos) -> None:
    """~5 % of the recordings lose their transcript webhooks, ~3 % (others) their recording.done."""
    ids = sorted(chaos.live.planned)
    chaos.rng.shuffle(ids)
    n = len(ids)
    transcript_lost = max(1, round(n * 0.05)) if n >= 4 else 0
    recording_lost = max(1, round(n * 0.03)) if n >= 4 else 0
    for recording_id in ids[:transcript_lost]:
        chaos.lost[recording_id] = TRANSCRIPT_EVENTS
    for recording_id in ids[transcript_lost : transcript_lost + recording_lost]:
        chaos.lost[recording_id] = RECORDING_EVENTS


async def prepare(chaos: Chaos, sim: httpx.AsyncClient) -> None:
    if not chaos.options.lost_webhooks:
        return
    choose(chaos)
    for events in (TRANSCRIPT_EVENTS, RECORDING_EVENTS):
        ids = [rid for rid, lost in chaos.lost.items() if lost == events]
        if ids:
            response = await sim.post("/admin/lost-webhooks", json={"recording_ids": ids, "events": list(events)})
            response.raise_for_status()
    by_events = Counter(chaos.lost.values())
    chaos.events.append(
        FaultEvent(
            0.0,
            "lost-webhooks",
            "recall_sim",
            "never delivered: "
            + ", ".join(f"{'/'.join(events)} of {count} recordings" for events, count in sorted(by_events.items()))
            + f"; transcriber deadline {DEADLINE_SECONDS}s, sweep every {SWEEP_SECONDS}s; reconcile during the drain",
        )
    )


async def reconcile_once(chaos: Chaos) -> dict[str, Any]:
    env = dict(chaos.processes["transcriber"].env)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pipeline_cli",
        "reconcile",
        "--grace",
        "5s",
        "--json",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    result: dict[str, Any] = {"exit": process.returncode}
    try:
        result["report"] = json.loads(out)
    except ValueError:
        result["stdout"] = out.decode(errors="replace")[-300:]
    if process.returncode not in (0, 1):
        result["stderr"] = err.decode(errors="replace")[-300:]
    return result


async def reconciler(chaos: Chaos, stop: asyncio.Event) -> None:
    """``recall-pipeline reconcile`` every few seconds until the drain is over (repeated runs are harmless)."""
    if not chaos.options.lost_webhooks:
        return
    while not stop.is_set():
        started = chaos.now()
        try:
            result = await reconcile_once(chaos)
        except Exception as error:  # a run that could not start: the next one tries again
            result = {"error": repr(error)}
        chaos.reconcile_runs.append({"at_s": round(started, 1), **result})
        log(f"{started:6.1f}s  reconcile: exit {result.get('exit')}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), RECONCILE_EVERY_SECONDS)
