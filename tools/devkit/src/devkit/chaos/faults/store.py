"""The fetcher's file store failing its writes for a window. Chaos runs as root, for whom ``chmod`` stops nothing,
and mounting a small tmpfs needs privileges it does not have; so the store's directory is moved aside and a plain
file put in its place: every write below it fails with ``NotADirectoryError`` (an ``OSError``) until the directory
is put back. Nothing written before is touched."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING

from devkit.chaos.faults.base import FaultEvent, once_between
from devkit.chaos.options import log

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

WINDOW_SECONDS = 4.0


def block(root: Path) -> Path:
    """Put a file where the store's directory is; returns where the directory went."""
    aside = root.with_name(root.name + ".aside")
    blocker = root.with_name(root.name + ".blocker")
    blocker.write_text("chaos: the transcript store is unwritable for a while\n")
    root.mkdir(parents=True, exist_ok=True)
    os.rename(root, aside)
    os.rename(blocker, root)
    return aside


def unblock(root: Path, aside: Path) -> None:
    root.unlink()
    os.rename(aside, root)


async def store_outage(chaos: Chaos, fraction: float) -> None:
    await chaos.at_progress(fraction)
    root = chaos.profile.transcripts
    event = FaultEvent(chaos.now(), "store-outage", "fetcher store")
    ended = chaos.ended()
    aside = await asyncio.to_thread(block, root)
    log(f"{event.at:6.1f}s  transcript store unwritable for {WINDOW_SECONDS:.0f}s")
    try:
        await asyncio.sleep(WINDOW_SECONDS)
    finally:
        await asyncio.to_thread(unblock, root, aside)
    chaos.record(
        event, f"{root} replaced by a file at {ended}/{len(chaos.live.planned)} ended: writes fail NotADirectoryError"
    )


def scheduled(chaos: Chaos) -> list[Awaitable[None]]:
    return once_between(chaos, chaos.options.store_outage, store_outage, 0.35, 0.65)
