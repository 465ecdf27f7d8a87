"""The fault windows the simulator runs on request (``PUT /admin/faults``): API faults in phases, webhook chaos
(duplicates, out of order), the primary provider's outage. On from the start until the feed and every discrete
fault are over; the outage from 25 % to 60 % of the recordings ended."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

import httpx

from devkit.chaos.faults.base import FaultEvent
from devkit.demo import PRIMARY

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


def faults_body(chaos: Chaos) -> dict[str, Any]:
    body: dict[str, Any] = {"endpoints": {}, "provider_failures": {}, "webhooks": {}}
    if chaos.api_phase is not None:
        # Each phase answers differently; every phase drops some responses (processed, answer lost).
        statuses = [(429, 503, 500), (503, 429, 502), (500, 502, 503)][chaos.api_phase % 3]
        body["endpoints"] = {
            "create_transcript": {
                "error_rate": 0.15,
                "status": statuses[0],
                "retry_after": 1 if statuses[0] == 429 else None,
                "drop_rate": 0.05,
            },
            "retrieve_transcript": {"error_rate": 0.1, "status": statuses[1], "drop_rate": 0.05},
            "download": {"error_rate": 0.1, "status": statuses[2]},
        }
    if chaos.outage_on:
        body["provider_failures"] = {PRIMARY: "provider_connection_failed"}
    if chaos.webhooks_on:
        body["webhooks"] = {"duplicate_rate": 0.2, "out_of_order_rate": 0.2, "out_of_order_delay_seconds": 1.5}
    return body


async def apply_faults(chaos: Chaos, sim: httpx.AsyncClient) -> None:
    response = await sim.put("/admin/faults", json=faults_body(chaos))
    response.raise_for_status()


async def fault_windows(
    chaos: Chaos, sim: httpx.AsyncClient, discrete_done: asyncio.Event, feed_done: asyncio.Event
) -> None:
    """Webhook chaos and API faults from the start until the feed and every kill/restart are over (the API
    faults change their answers every few seconds); the provider outage from 25 % to 60 % of the recordings
    ended."""
    phase_seconds = 8.0
    api: FaultEvent | None = None
    webhooks: FaultEvent | None = None
    outage: FaultEvent | None = None
    outage_done = not chaos.options.provider_outage
    phase_started = 0.0
    if chaos.options.webhook_chaos:
        chaos.webhooks_on = True
        webhooks = chaos.open_window(
            "webhook-chaos", "recall_sim", "20% delivered twice, 20% held back 1.5s (overtaken by later ones)"
        )
    if chaos.options.api_faults:
        chaos.api_phase, phase_started = 0, chaos.now()
    await apply_faults(chaos, sim)
    while True:
        changed = False
        if chaos.api_phase is not None and (api is None or chaos.now() - phase_started >= phase_seconds):
            if api is not None:
                api.until = chaos.now()
                chaos.api_phase += 1
            statuses = ["429/503/500", "503/429/502", "500/502/503"][chaos.api_phase % 3]
            api = chaos.open_window(
                "api-faults",
                "recall_sim",
                f"create/retrieve/download answer {statuses} (15%/10%/10% of calls); 5% of creates and "
                "retrieves processed but their answer dropped",
            )
            phase_started, changed = chaos.now(), True
        if not outage_done and outage is None and chaos.progress_fraction() >= 0.25:
            chaos.outage_on, changed = True, True
            outage = chaos.open_window(
                "provider-outage", PRIMARY, f"{PRIMARY} fails every transcript (provider_connection_failed)"
            )
        finished = discrete_done.is_set() and feed_done.is_set()
        if outage is not None and not outage_done and (chaos.progress_fraction() >= 0.6 or finished):
            chaos.outage_on, outage_done, changed = False, True, True
            outage.until = chaos.now()
        if finished and (outage_done or time.monotonic() > chaos.deadline):
            chaos.api_phase, chaos.webhooks_on, chaos.outage_on = None, False, False
            await apply_faults(chaos, sim)
            for event in (api, webhooks, outage):
                if event is not None and event.until is None:
                    event.until = chaos.now()
            return
        if changed:
            await apply_faults(chaos, sim)
        await asyncio.sleep(0.2)


async def clear(chaos: Chaos, sim: httpx.AsyncClient) -> None:
    """Every window closed (whatever happened, before the ledger is drawn)."""
    chaos.api_phase, chaos.outage_on, chaos.webhooks_on = None, False, False
    with contextlib.suppress(httpx.HTTPError):
        await apply_faults(chaos, sim)
