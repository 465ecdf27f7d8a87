"""Recall's API subset: Create Async Transcript, Retrieve/List/Delete Transcript, Retrieve Recording."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from pipeline_common.recall.providers import ProviderConfig
from recall_sim.config import Endpoint
from recall_sim.http import (
    error,
    finish,
    guarded,
    inject_faults,
    rate_limited,
    read_json,
    sim_of,
    unauthorized,
    validate_create,
)
from recall_sim.records import Call, IdempotencyEntry, SimTranscript
from recall_sim.simulator import Simulator

router = APIRouter()
# Fault injection (auth, latency, injected errors) as each endpoint's dependency.
_RETRIEVE_TRANSCRIPT = guarded(Endpoint.RETRIEVE_TRANSCRIPT, "GET")
_LIST_TRANSCRIPTS = guarded(Endpoint.LIST_TRANSCRIPTS, "GET")
_DELETE_TRANSCRIPT = guarded(Endpoint.DELETE_TRANSCRIPT, "DELETE")
_RETRIEVE_RECORDING = guarded(Endpoint.RETRIEVE_RECORDING, "GET")


@router.post("/api/v1/recording/{recording_id}/create_transcript/")
async def create_transcript(recording_id: str, request: Request) -> Response:
    sim = sim_of(request)
    endpoint = Endpoint.CREATE_TRANSCRIPT
    path = request.url.path
    call = sim.record_call("POST", path, endpoint)
    call.recording_id = recording_id
    key = request.headers.get("idempotency-key")
    call.idempotency_key = key
    refused = unauthorized(sim, call, request.headers.get("authorization"))
    if refused is not None:
        return refused
    if key:
        entry = sim.idempotency_lookup(key, path)
        if entry is not None and entry.in_flight:
            conflict = error(409, "A request with this Idempotency-Key is already in progress.")
            return finish(request, call, conflict, "idempotency_conflict", endpoint)
        if entry is not None:
            replay = Response(
                entry.body,
                status_code=entry.status,
                media_type="application/json",
                headers={"Idempotent-Replayed": "true"},
            )
            return finish(request, call, replay, "replayed", endpoint)
        sim.idempotency[(key, path)] = IdempotencyEntry(in_flight=True, created=sim.clock.time())
    cacheable = False
    response: Response
    try:
        response, outcome, cacheable = await _create(request, call, recording_id)
    finally:
        if key:
            if cacheable:
                sim.idempotency[(key, path)] = IdempotencyEntry(
                    in_flight=False,
                    created=sim.clock.time(),
                    status=response.status_code,
                    body=bytes(response.body),
                )
            else:
                sim.idempotency.pop((key, path), None)
    return finish(request, call, response, outcome, endpoint)


async def _create(request: Request, call: Call, recording_id: str) -> tuple[Response, str, bool]:
    """(response, outcome, whether an Idempotency-Key may replay it). Faults come after the Idempotency-Key check:
    a replay is answered from the cache, as Recall does."""
    sim = sim_of(request)
    injected = await inject_faults(request, call, Endpoint.CREATE_TRANSCRIPT)
    if injected is not None:
        return injected, "injected", False
    recording = sim.recordings.get(recording_id)
    if recording is None:
        return error(404, "Not found."), "not_found", True
    call.bot_id = recording.bot_id
    wait = sim.rate_limited(f"create:{recording.bot_id or recording.id}", sim.config.create_per_bot_per_window)
    if wait is not None:
        return rate_limited(wait), "rate_limited", False
    body, problem = await read_json(request)
    if problem is not None:
        return problem, "invalid", True
    body, errors = validate_create(body)
    if errors or body is None:
        return JSONResponse(errors, status_code=400), "invalid", True
    config = ProviderConfig.model_validate(body["provider"])
    call.provider = config.provider_name
    if recording.status != "done":
        return error(400, f"Recording is not done (status: {recording.status})."), "invalid", True
    limit = sim.config.transcript_limit
    if len(sim.active_transcripts(recording.id)) >= limit:
        detail = (
            f"Maximum number of transcripts ({limit}) reached for this recording. "
            "Delete an existing transcript before creating a new one."
        )
        return error(400, detail), "transcript_limit", True
    transcript = sim.create_transcript(
        recording,
        provider=body["provider"],
        provider_name=config.provider_name,
        diarization=body.get("diarization"),
        metadata=body.get("metadata") or {},
        idempotency_key=call.idempotency_key,
    )
    call.transcript_id = transcript.id
    return JSONResponse(sim.transcript_json(transcript, str(request.base_url)), status_code=200), "created", True


def live_transcript(sim: Simulator, transcript_id: str) -> SimTranscript | None:
    transcript = sim.transcripts.get(transcript_id)
    return None if transcript is None or transcript.deleted else transcript


@router.get("/api/v1/transcript/{transcript_id}/")
async def retrieve_transcript(transcript_id: str, request: Request, call: Call = _RETRIEVE_TRANSCRIPT) -> Response:
    sim, endpoint = sim_of(request), Endpoint.RETRIEVE_TRANSCRIPT
    call.transcript_id = transcript_id
    wait = sim.rate_limited("retrieve", sim.config.retrieve_per_window)
    if wait is not None:
        return finish(request, call, rate_limited(wait), "rate_limited", endpoint)
    transcript = live_transcript(sim, transcript_id)
    if transcript is None:
        return finish(request, call, error(404, "Not found."), "not_found", endpoint)
    call.recording_id = transcript.recording_id
    return finish(request, call, JSONResponse(sim.transcript_json(transcript, str(request.base_url))), "ok", endpoint)


@router.get("/api/v1/transcript/")
async def list_transcripts(request: Request, call: Call = _LIST_TRANSCRIPTS) -> Response:
    sim, endpoint = sim_of(request), Endpoint.LIST_TRANSCRIPTS
    wait = sim.rate_limited("list", sim.config.list_per_window)
    if wait is not None:
        return finish(request, call, rate_limited(wait), "rate_limited", endpoint)
    params = dict(request.query_params)
    recording_id = params.get("recording_id")
    call.recording_id = recording_id
    after = 0
    if "cursor" in params:
        try:
            after = int(base64.urlsafe_b64decode(params["cursor"].encode() + b"==").decode())
        except (ValueError, binascii.Error, UnicodeDecodeError):
            return finish(request, call, error(404, "Invalid cursor"), "invalid", endpoint)
    items = sorted(
        (
            t
            for t in sim.transcripts.values()
            if not t.deleted and (recording_id is None or t.recording_id == recording_id) and t.seq > after
        ),
        key=lambda t: t.seq,
    )
    page, rest = items[: sim.config.page_size], items[sim.config.page_size :]
    base = str(request.base_url).rstrip("/")
    if sim.config.public_url:
        base = sim.config.public_url.rstrip("/")
    next_url = None
    if rest:
        cursor = base64.urlsafe_b64encode(str(page[-1].seq).encode()).decode().rstrip("=")
        next_url = f"{base}{request.url.path}?{urlencode({**params, 'cursor': cursor})}"
    body = {
        "next": next_url,
        "previous": None,
        "results": [sim.transcript_json(t, str(request.base_url)) for t in page],
    }
    return finish(request, call, JSONResponse(body), "ok", endpoint)


@router.delete("/api/v1/transcript/{transcript_id}/")
async def delete_transcript(transcript_id: str, request: Request, call: Call = _DELETE_TRANSCRIPT) -> Response:
    sim, endpoint = sim_of(request), Endpoint.DELETE_TRANSCRIPT
    call.transcript_id = transcript_id
    transcript = live_transcript(sim, transcript_id)
    if transcript is None:
        return finish(request, call, error(404, "Not found."), "not_found", endpoint)
    call.recording_id = transcript.recording_id
    sim.delete_transcript(transcript)
    return finish(request, call, Response(status_code=204), "deleted", endpoint)


@router.get("/api/v1/recording/{recording_id}/")
async def retrieve_recording(recording_id: str, request: Request, call: Call = _RETRIEVE_RECORDING) -> Response:
    sim, endpoint = sim_of(request), Endpoint.RETRIEVE_RECORDING
    call.recording_id = recording_id
    recording = sim.recordings.get(recording_id)
    if recording is None:
        return finish(request, call, error(404, "Not found."), "not_found", endpoint)
    done = [t for t in sim.active_transcripts(recording.id) if t.status == "done"]
    latest = None
    if done:
        full = sim.transcript_json(max(done, key=lambda t: t.seq), str(request.base_url))
        latest = {key: full[key] for key in ("id", "created_at", "status", "data", "provider", "metadata")}
    return finish(request, call, JSONResponse(recording.to_dict(latest)), "ok", endpoint)
