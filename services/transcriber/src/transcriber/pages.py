"""The transcriber's HTTP pages beside the operational ones: a recording's state, as the Table holds it."""

from __future__ import annotations

from typing import Any

import faust
from faust.types import TableT
from prometheus_client import CollectorRegistry

from pipeline_common.streaming import add_operational_pages


def add_pages(app: faust.App, recordings: TableT[str, Any], registry: CollectorRegistry) -> None:
    add_operational_pages(app, registry, ready_gauge="transcriber_worker_ready")

    @app.page("/recordings/{recording_id}")
    async def recording_state(web: Any, request: Any, recording_id: str) -> Any:
        value = recordings.get(recording_id)
        if value is None or "recording_id" not in value:
            return web.json({"error": "not_found", "recording_id": recording_id}, status=404)
        return web.json(value)
