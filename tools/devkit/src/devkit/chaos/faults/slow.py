"""A transcript still processing at Recall past the transcriber's deadline: a few recordings' transcripts stay
``processing`` (the simulator's per-recording ``processing_seconds``) for 1.6 times the deadline. The sweep looks
them up, finds them processing, and must keep waiting, not fail them."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.faults.lost import DEADLINE_SECONDS

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

PROCESSING_SECONDS = DEADLINE_SECONDS * 1.6


async def prepare(chaos: Chaos, sim: httpx.AsyncClient) -> None:
    if not chaos.options.slow_transcripts:
        return
    candidates = sorted(
        rid for rid, item in chaos.live.planned.items() if item.kind == "primary" and rid not in chaos.lost
    )
    count = min(len(candidates), max(1, round(len(chaos.live.planned) * 0.02)))
    for recording_id in chaos.rng.sample(candidates, count):
        chaos.slow.add(recording_id)
        chaos.spec_overrides.setdefault(recording_id, {})["processing_seconds"] = PROCESSING_SECONDS
    chaos.events.append(
        FaultEvent(
            0.0,
            "slow-transcripts",
            "recall_sim",
            f"{count} recordings' transcripts stay processing {PROCESSING_SECONDS:.0f}s "
            f"(the transcriber's deadline: {DEADLINE_SECONDS}s)",
        )
    )
