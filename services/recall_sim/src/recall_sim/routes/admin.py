"""The admin API (tests and demos; not part of Recall): recordings, transcripts, calls, deliveries, faults, config,
clock."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline_common.logging import get_logger
from recall_sim.config import Faults, RuntimeConfig
from recall_sim.generator import TranscriptSpec
from recall_sim.http import sim_of
from recall_sim.simulator import Simulator

log = get_logger("recall_sim.api")
router = APIRouter()
SIM = Depends(sim_of)


# --- admin bodies ---------------------------------------------------------------------------------------------------


class RecordingRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,128}$")
    bot_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,128}$")
    bot: bool = True
    metadata: dict[str, Any] = Field(default_factory=dict)
    bot_metadata: dict[str, Any] = Field(default_factory=dict)
    status: Literal["processing", "done", "failed"] = "done"
    sub_code: str | None = None
    transcript: TranscriptSpec = Field(default_factory=TranscriptSpec)
    webhooks: bool = True


class RecordingStatusRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["processing", "done", "failed", "deleted"]
    sub_code: str | None = None


class FinishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["done", "failed"] | None = None
    sub_code: str | None = None


class EventRequest(BaseModel):
    """Either a raw ``body`` (sent as is) or the parts of a standard status-change event."""

    model_config = ConfigDict(extra="forbid")
    body: dict[str, Any] | None = None
    event: str | None = None
    recording_id: str | None = None
    transcript_id: str | None = None
    bot_id: str | None = None
    code: str | None = None
    sub_code: str | None = None


class ClockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    advance_seconds: float = Field(ge=0)


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/admin/recordings", status_code=201)
async def admin_create_recording(body: RecordingRequest, sim: Simulator = SIM) -> dict[str, Any]:
    if body.id is not None and body.id in sim.recordings:
        raise HTTPException(409, "recording exists")
    recording = sim.create_recording(
        recording_id=body.id,
        bot_id=body.bot_id,
        with_bot=body.bot,
        metadata=body.metadata,
        bot_metadata=body.bot_metadata,
        status=body.status,
        sub_code=body.sub_code,
        spec=body.transcript,
        webhooks=body.webhooks,
    )
    return recording.to_dict()


@router.get("/admin/recordings")
async def admin_recordings(sim: Simulator = SIM) -> list[dict[str, Any]]:
    return [recording.to_dict() for recording in sim.recordings.values()]


@router.post("/admin/recordings/{recording_id}/status")
async def admin_recording_status(
    recording_id: str, body: RecordingStatusRequest, sim: Simulator = SIM
) -> dict[str, Any]:
    recording = sim.recordings.get(recording_id)
    if recording is None:
        raise HTTPException(404, "no such recording")
    sim.set_recording_status(recording, body.status, body.sub_code)
    return recording.to_dict()


@router.get("/admin/transcripts")
async def admin_transcripts(
    request: Request, recording_id: str | None = None, sim: Simulator = SIM
) -> list[dict[str, Any]]:
    return [
        {
            **sim.transcript_json(t, str(request.base_url)),
            "deleted": t.deleted,
            "idempotency_key": t.idempotency_key,
        }
        for t in sorted(sim.transcripts.values(), key=lambda t: t.seq)
        if recording_id is None or t.recording_id == recording_id
    ]


@router.post("/admin/transcripts/{transcript_id}/finish")
async def admin_finish(transcript_id: str, body: FinishRequest, sim: Simulator = SIM) -> dict[str, Any]:
    transcript = sim.transcripts.get(transcript_id)
    if transcript is None:
        raise HTTPException(404, "no such transcript")
    changed = sim.finish_transcript(transcript, body.status, body.sub_code)
    return {"changed": changed, "status": transcript.status, "sub_code": transcript.sub_code}


@router.get("/admin/calls")
async def admin_calls(
    endpoint: str | None = None, recording_id: str | None = None, transcript_id: str | None = None, sim: Simulator = SIM
) -> list[dict[str, Any]]:
    return [
        vars(call).copy()
        for call in sim.calls
        if (endpoint is None or call.endpoint == endpoint)
        and (recording_id is None or call.recording_id == recording_id)
        and (transcript_id is None or call.transcript_id == transcript_id)
    ]


@router.get("/admin/deliveries")
async def admin_deliveries(
    event: str | None = None,
    recording_id: str | None = None,
    transcript_id: str | None = None,
    body: bool = True,
    sim: Simulator = SIM,
) -> list[dict[str, Any]]:
    return [
        delivery.to_dict(body=body)
        for delivery in sim.webhooks.deliveries
        if (event is None or delivery.event == event)
        and (recording_id is None or delivery.recording_id == recording_id)
        and (transcript_id is None or delivery.transcript_id == transcript_id)
    ]


@router.post("/admin/webhooks", status_code=202)
async def admin_send_event(body: EventRequest, sim: Simulator = SIM) -> dict[str, Any]:
    if body.body is not None:
        payload = body.body
    elif body.event:
        data: dict[str, Any] = {
            "data": {
                "code": body.code or body.event.split(".", 1)[-1],
                "sub_code": body.sub_code,
                "updated_at": sim.clock.now().isoformat().replace("+00:00", "Z"),
            }
        }
        if body.transcript_id:
            data["transcript"] = {"id": body.transcript_id, "metadata": {}}
        if body.recording_id:
            data["recording"] = {"id": body.recording_id, "metadata": {}}
        data["bot"] = {"id": body.bot_id, "metadata": {}} if body.bot_id else None
        payload = {"event": body.event, "data": data}
    else:
        raise HTTPException(422, "give a body or an event")
    delivery = sim.webhooks.send(
        payload, recording_id=body.recording_id, transcript_id=body.transcript_id, bot_id=body.bot_id, force=True
    )
    assert delivery is not None
    return delivery.to_dict()


@router.get("/admin/faults")
async def admin_faults(sim: Simulator = SIM) -> dict[str, Any]:
    return sim.faults.model_dump(mode="json")


@router.put("/admin/faults")
async def admin_set_faults(faults: Faults, sim: Simulator = SIM) -> dict[str, Any]:
    sim.faults = faults
    log.info("faults set", faults=faults.model_dump(mode="json"))
    return sim.faults.model_dump(mode="json")


@router.delete("/admin/faults")
async def admin_clear_faults(sim: Simulator = SIM) -> dict[str, Any]:
    sim.faults = Faults()
    return sim.faults.model_dump(mode="json")


@router.get("/admin/config")
async def admin_config(sim: Simulator = SIM) -> dict[str, Any]:
    return sim.config.public()


@router.patch("/admin/config")
async def admin_patch_config(patch: dict[str, Any], sim: Simulator = SIM) -> dict[str, Any]:
    try:
        sim.config = RuntimeConfig.model_validate({**sim.config.model_dump(), **patch})
    except ValidationError as error:
        raise HTTPException(422, error.errors(include_url=False, include_input=False, include_context=False)) from None
    return sim.config.public()


@router.get("/admin/clock")
async def admin_clock(sim: Simulator = SIM) -> dict[str, Any]:
    return {"now": sim.clock.now().isoformat(), "offset_seconds": sim.clock.offset}


@router.post("/admin/clock")
async def admin_advance_clock(body: ClockRequest, sim: Simulator = SIM) -> dict[str, Any]:
    sim.clock.offset += body.advance_seconds
    return {"now": sim.clock.now().isoformat(), "offset_seconds": sim.clock.offset}


@router.post("/admin/reset")
async def admin_reset(sim: Simulator = SIM) -> dict[str, str]:
    sim.reset()
    return {"status": "reset"}
