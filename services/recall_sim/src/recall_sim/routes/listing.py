"""List Recordings as Recall serves it, and the "lose webhooks" control reconciliation tests need.

``GET /api/v1/recording/`` takes Recall's filters (``status_code``, ``created_at_after``, ``created_at_before``,
``bot_id``, ``metadata__KEY=VALUE``, all of which must match) and pages with an opaque ``cursor`` in ``next``.
``/admin/lost-webhooks`` chooses recordings whose webhooks are never delivered (every event, or only some types),
as if Recall had given up on them; ``faults.webhooks.lose_recording_rate`` does the same for a share of recordings.
"""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from pipeline_common.logging import get_logger
from recall_sim.config import Endpoint
from recall_sim.http import inject_faults, rate_limited, unauthorized
from recall_sim.records import Call, Recording
from recall_sim.simulator import Simulator
from recall_sim.webhooks import iso

log = get_logger("recall_sim.listing")

router = APIRouter()

STATUSES = frozenset({"processing", "paused", "done", "failed"})
_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


def _record(call: Call, response: Response, outcome: str) -> Response:
    call.status, call.outcome = response.status_code, outcome
    log.info(
        "api call", endpoint=call.endpoint, method=call.method, path=call.path, status=call.status, outcome=outcome
    )
    return response


def _answer(call: Call, status: int, body: Any, outcome: str) -> Response:
    return _record(
        call, Response(status_code=204) if status == 204 else JSONResponse(body, status_code=status), outcome
    )


def _parse_time(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def _cursor(recording: Recording) -> str:
    raw = f"{iso(recording.created_at)}|{recording.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after_cursor(value: str) -> tuple[str, str] | None:
    try:
        created, _, recording_id = base64.urlsafe_b64decode(value.encode() + b"==").decode().partition("|")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    return (created, recording_id) if created and recording_id else None


def _field_errors(params: dict[str, str]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    status = params.get("status_code")
    if status is not None and status not in STATUSES:
        errors["status_code"] = [f"Select a valid choice. {status[:50]} is not one of the available choices."]
    for name in ("created_at_after", "created_at_before"):
        if name in params and _parse_time(params[name]) is None:
            errors[name] = ["Enter a valid date/time."]
    return errors


def _matches(recording: Recording, params: dict[str, str]) -> bool:
    if "status_code" in params and recording.status != params["status_code"]:
        return False
    if "bot_id" in params and recording.bot_id != params["bot_id"]:
        return False
    after, before = params.get("created_at_after"), params.get("created_at_before")
    if after is not None and recording.created_at < (_parse_time(after) or recording.created_at):
        return False
    if before is not None and recording.created_at > (_parse_time(before) or recording.created_at):
        return False
    for name, value in params.items():
        if name.startswith("metadata__") and str(recording.metadata.get(name.removeprefix("metadata__"))) != value:
            return False
    return True


@router.get("/api/v1/recording/")
async def list_recordings(request: Request) -> Response:
    sim = _sim(request)
    endpoint = Endpoint.LIST_RECORDINGS
    call = sim.record_call("GET", request.url.path, endpoint)
    refused = unauthorized(sim, call, request.headers.get("authorization"))
    if refused is not None:
        return _record(call, refused, "unauthorized")
    injected = await inject_faults(request, call, endpoint)
    if injected is not None:
        return _record(call, injected, "injected")
    wait = sim.rate_limited("list_recordings", sim.config.list_per_window)
    if wait is not None:
        return _record(call, rate_limited(wait), "rate_limited")
    params = dict(request.query_params)
    errors = _field_errors(params)
    if errors:
        return _answer(call, 400, errors, "invalid")
    after: tuple[str, str] | None = None
    if "cursor" in params:
        after = _after_cursor(params["cursor"])
        if after is None:
            return _answer(call, 404, {"detail": "Invalid cursor"}, "invalid")
    items = sorted((r for r in sim.recordings.values() if _matches(r, params)), key=lambda r: (iso(r.created_at), r.id))
    if after is not None:
        items = [r for r in items if (iso(r.created_at), r.id) > after]
    size = sim.config.page_size
    page, rest = items[:size], items[size:]
    base = (sim.config.public_url or str(request.base_url)).rstrip("/")
    next_url = None
    if rest:
        next_url = f"{base}{request.url.path}?{urlencode({**params, 'cursor': _cursor(page[-1])})}"
    body = {"next": next_url, "previous": None, "results": [r.to_dict() for r in page]}
    return _answer(call, 200, body, "ok")


# --- admin: lose webhooks --------------------------------------------------------------------------------------------


class LostWebhooksRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recording_ids: list[str] = Field(min_length=1, max_length=10_000)
    events: list[str] | None = Field(default=None, description="event types to lose; null: every event")

    def checked(self) -> list[str]:
        return [value for value in self.recording_ids if _ID.match(value)]


def _lost(sim: Simulator) -> dict[str, Any]:
    return {rid: (sorted(events) if events is not None else None) for rid, events in sim.lost_webhooks.items()}


@router.get("/admin/lost-webhooks")
async def admin_lost_webhooks(request: Request) -> dict[str, Any]:
    return _lost(_sim(request))


@router.post("/admin/lost-webhooks")
async def admin_lose_webhooks(body: LostWebhooksRequest, request: Request) -> Response:
    sim = _sim(request)
    valid = body.checked()
    if len(valid) != len(body.recording_ids):
        return JSONResponse({"detail": "recording ids are 1-128 letters, digits, '-' or '_'"}, status_code=422)
    events = frozenset(body.events) if body.events is not None else None
    for recording_id in valid:
        sim.lost_webhooks[recording_id] = events
    log.info("webhooks will be lost", recordings=len(valid), events=sorted(events) if events else "all")
    return JSONResponse(_lost(sim))


@router.delete("/admin/lost-webhooks")
async def admin_clear_lost_webhooks(request: Request) -> dict[str, Any]:
    sim = _sim(request)
    sim.lost_webhooks.clear()
    return _lost(sim)
