"""Pre-signed downloads: storage URLs (S3 in real life), and Recall's API-host download URLs that redirect to them."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse

from recall_sim.config import Endpoint
from recall_sim.http import error, finish, inject_faults, s3_error, sim_of
from recall_sim.records import Call
from recall_sim.routes.api import live_transcript

router = APIRouter()


def _download_call(request: Request, transcript_id: str) -> Call:
    """The call log's entry for a download: pre-signed URLs carry their credential, so an Authorization header sent
    along is noted (S3 refuses it, and the key must never go to storage)."""
    call = sim_of(request).record_call("GET", request.url.path, Endpoint.DOWNLOAD)
    call.transcript_id = transcript_id
    call.authorization_sent = "authorization" in request.headers
    return call


@router.get("/files/{kind}/{transcript_id}.json")
async def download(kind: str, transcript_id: str, request: Request) -> Response:
    sim, endpoint = sim_of(request), Endpoint.DOWNLOAD
    call = _download_call(request, transcript_id)
    if call.authorization_sent:
        response = s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
        return finish(request, call, response, "authorization_sent", endpoint)
    if kind not in {"transcripts", "provider-data"}:
        return finish(
            request, call, s3_error(404, "NoSuchKey", "The specified key does not exist."), "not_found", endpoint
        )
    problem = sim.check_signed(
        kind, transcript_id, request.query_params.get("X-Sim-Expires"), request.query_params.get("X-Sim-Signature")
    )
    if problem is not None:
        message = "Request has expired" if problem == "ExpiredToken" else "Access Denied"
        return finish(request, call, s3_error(403, "AccessDenied", message), problem, endpoint)
    injected = await inject_faults(request, call, endpoint)
    if injected is not None:
        response = s3_error(injected.status_code, "InternalError", "Simulated failure.")
        return finish(request, call, response, "injected", endpoint)
    transcript = live_transcript(sim, transcript_id)
    if transcript is None or transcript.status != "done":
        return finish(
            request, call, s3_error(404, "NoSuchKey", "The specified key does not exist."), "not_found", endpoint
        )
    call.recording_id = transcript.recording_id
    data = await sim.transcript_bytes(transcript) if kind == "transcripts" else sim.provider_bytes(transcript)
    if sim.config.download_chunked:
        chunks = (data[offset : offset + 65536] for offset in range(0, len(data), 65536))
        return finish(request, call, StreamingResponse(chunks, media_type="application/json"), "ok", endpoint)
    return finish(request, call, Response(data, media_type="application/json"), "ok", endpoint)


@router.get("/api/v1/download/{kind}/{transcript_id}")
async def download_redirect(kind: str, transcript_id: str, request: Request) -> Response:
    """A download URL on the API host: the token is the credential (no Authorization), the answer a redirect."""
    sim, endpoint = sim_of(request), Endpoint.DOWNLOAD
    call = _download_call(request, transcript_id)
    if call.authorization_sent:
        return finish(request, call, error(400, "Authorization is not accepted here."), "authorization_sent", endpoint)
    expires, _, signature = (request.query_params.get("token") or "").partition(".")
    problem = sim.check_signed(kind, transcript_id, expires, signature)
    if problem is not None:
        return finish(request, call, error(403, "Invalid or expired token."), problem, endpoint)
    base = (sim.config.public_url or str(request.base_url)).rstrip("/")
    location = sim.storage_url(base, kind, transcript_id, expires, signature)
    return finish(request, call, Response(status_code=302, headers={"Location": location}), "redirected", endpoint)
