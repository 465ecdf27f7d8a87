"""The simulator's HTTP surface: Recall's API subset, pre-signed downloads, and an admin API for tests.

``create_app(settings)`` builds the ASGI app; run it under uvicorn (``python -m recall_sim`` does).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline_common.logging import get_logger
from pipeline_common.recall.providers import ProviderConfig
from recall_sim.config import Endpoint, Faults, RuntimeConfig
from recall_sim.generator import TranscriptSpec
from recall_sim.settings import SimSettings
from recall_sim.simulator import Call, IdempotencyEntry, SimTranscript, Simulator

log = get_logger("recall_sim.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CONTROL = "recall_sim.control"
MAX_BODY_BYTES = 1024 * 1024


class SimulatorApp(FastAPI):
    """FastAPI plus the one thing middleware cannot do from inside Starlette's stack: drop a response.

    When a handler marks its request dropped, the response is swallowed and the TCP connection is closed without an
    answer (the request *was* processed), as when Recall's answer is lost in flight."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        control = {"drop": False}
        scope[CONTROL] = control

        async def guarded_send(message: Message) -> None:
            if control["drop"] and message["type"].startswith("http.response"):
                return
            await send(message)

        await super().__call__(scope, receive, guarded_send)
        if control["drop"]:
            transport = getattr(getattr(send, "__self__", None), "transport", None)
            if transport is None:  # not uvicorn: the best we can do is fail the response
                raise ConnectionAbortedError("recall_sim: response dropped")
            transport.close()
            try:
                async with asyncio.timeout(2):
                    while (await receive())["type"] != "http.disconnect":
                        pass
            except TimeoutError:
                pass


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")


def _sim(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


def _finish(request: Request, call: Call, response: Response, outcome: str, endpoint: Endpoint) -> Response:
    """Record the call's outcome; maybe drop the response (the work is done either way)."""
    if _sim(request).should_garble(endpoint):
        # The work is done, but what comes back is a proxy's error page with a 200 (it happens).
        response = Response(b"<html><body>upstream hiccup</body></html>", status_code=200, media_type="text/html")
        outcome = f"{outcome}+garbled"
    call.status = response.status_code
    call.outcome = outcome
    if _sim(request).should_drop(endpoint):
        request.scope[CONTROL]["drop"] = True
        call.outcome = "dropped"
    log.info(
        "api call",
        endpoint=call.endpoint,
        method=call.method,
        path=call.path,
        status=call.status,
        outcome=call.outcome,
    )
    return response


async def _guard(request: Request, call: Call, endpoint: Endpoint) -> Response | None:
    """Auth, injected latency and injected errors. A response means: answer with it."""
    sim = _sim(request)
    header = request.headers.get("authorization")
    if not sim.authorized(header):
        detail = "Invalid token." if header else "Authentication credentials were not provided."
        call.status, call.outcome = 401, "unauthorized"
        return _error(401, detail)
    fault = sim.fault(endpoint)
    if fault.latency_seconds:
        started = time.monotonic()
        await asyncio.sleep(fault.latency_seconds)
        call.latency_ms = round((time.monotonic() - started) * 1000)
    injected = sim.injected_error(endpoint)
    if injected is not None:
        headers = {}
        retry_after = (
            injected.retry_after if injected.retry_after is not None else (1 if injected.status == 429 else None)
        )
        if retry_after is not None:
            headers["Retry-After"] = f"{retry_after:g}"
        return _finish(request, call, _error(injected.status, "Simulated failure.", headers), "injected", endpoint)
    return None


def _rate_limited(seconds: float) -> JSONResponse:
    wait = max(1, int(-(-seconds // 1)))
    return _error(429, f"Request was throttled. Expected available in {wait} seconds.", {"Retry-After": str(wait)})


def _validate_create(body: Any) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """Recall-like (DRF) field errors for a Create Async Transcript body."""
    if not isinstance(body, dict):
        kind = type(body).__name__
        return None, {"non_field_errors": [f"Invalid data. Expected a dictionary, but got {kind}."]}
    errors: dict[str, list[str]] = {}
    provider = body.get("provider")
    if provider is None:
        errors["provider"] = ["This field is required."]
    else:
        try:
            ProviderConfig.model_validate(provider)
        except ValidationError as error:
            first = error.errors(include_url=False, include_input=False)[0]
            where = ".".join(str(part) for part in first["loc"])
            message = first["msg"].removeprefix("Value error, ")
            errors["provider"] = [f"{where}: {message}" if where else message]
    diarization = body.get("diarization")
    if diarization is not None:
        if not isinstance(diarization, dict):
            errors["diarization"] = ["Expected an object."]
        elif not isinstance(diarization.get("use_separate_streams_when_available", False), bool):
            errors["diarization"] = ["use_separate_streams_when_available: Must be a valid boolean."]
    metadata = body.get("metadata")
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(value, str) and len(value) <= 500 and len(key) <= 500 for key, value in metadata.items())
    ):
        # Recall's custom metadata: string keys and values, at most 500 characters, no nesting.
        errors["metadata"] = ["Expected an object of strings of at most 500 characters."]
    return body, errors


async def _read_json(request: Request) -> tuple[Any, Response | None]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None, _error(413, "Request body too large.")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return None, _error(413, "Request body too large.")
    try:
        return json.loads(raw or b"null"), None
    except (ValueError, RecursionError):
        return None, _error(400, "JSON parse error.")


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


def create_app(settings: SimSettings | None = None) -> SimulatorApp:
    settings = settings or SimSettings()
    sim = Simulator(
        config=settings.runtime_config(),
        faults=settings.recall_sim_faults.model_copy(deep=True),
        api_key=settings.recall_sim_api_key.get_secret_value(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    app = SimulatorApp(title="Recall.ai simulator", version="0.1.0", lifespan=lifespan, docs_url="/admin/docs")
    app.state.sim = sim

    # --- Recall API ------------------------------------------------------------------------------------------------

    @app.post("/api/v1/recording/{recording_id}/create_transcript/")
    async def create_transcript(recording_id: str, request: Request) -> Response:
        endpoint = Endpoint.CREATE_TRANSCRIPT
        path = request.url.path
        call = sim.record_call("POST", path, endpoint)
        call.recording_id = recording_id
        key = request.headers.get("idempotency-key")
        call.idempotency_key = key
        header = request.headers.get("authorization")
        if not sim.authorized(header):
            call.status, call.outcome = 401, "unauthorized"
            return _error(401, "Invalid token." if header else "Authentication credentials were not provided.")
        if key:
            entry = sim.idempotency_lookup(key, path)
            if entry is not None and entry.in_flight:
                conflict = _error(409, "A request with this Idempotency-Key is already in progress.")
                return _finish(request, call, conflict, "idempotency_conflict", endpoint)
            if entry is not None:
                replay = Response(
                    entry.body,
                    status_code=entry.status,
                    media_type="application/json",
                    headers={"Idempotent-Replayed": "true"},
                )
                return _finish(request, call, replay, "replayed", endpoint)
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
        return _finish(request, call, response, outcome, endpoint)

    async def _create(request: Request, call: Call, recording_id: str) -> tuple[Response, str, bool]:
        """(response, outcome, whether an Idempotency-Key may replay it)."""
        endpoint = Endpoint.CREATE_TRANSCRIPT
        fault = sim.fault(endpoint)
        if fault.latency_seconds:
            started = time.monotonic()
            await asyncio.sleep(fault.latency_seconds)
            call.latency_ms = round((time.monotonic() - started) * 1000)
        injected = sim.injected_error(endpoint)
        if injected is not None:
            headers = {}
            retry = (
                injected.retry_after if injected.retry_after is not None else (1 if injected.status == 429 else None)
            )
            if retry is not None:
                headers["Retry-After"] = f"{retry:g}"
            return _error(injected.status, "Simulated failure.", headers), "injected", False
        recording = sim.recordings.get(recording_id)
        if recording is None:
            return _error(404, "Not found."), "not_found", True
        call.bot_id = recording.bot_id
        wait = sim.rate_limited(f"create:{recording.bot_id or recording.id}", sim.config.create_per_bot_per_window)
        if wait is not None:
            return _rate_limited(wait), "rate_limited", False
        body, problem = await _read_json(request)
        if problem is not None:
            return problem, "invalid", True
        body, errors = _validate_create(body)
        if errors or body is None:
            return JSONResponse(errors, status_code=400), "invalid", True
        config = ProviderConfig.model_validate(body["provider"])
        call.provider = config.provider_name
        if recording.status != "done":
            return _error(400, f"Recording is not done (status: {recording.status})."), "invalid", True
        limit = sim.config.transcript_limit
        if len(sim.active_transcripts(recording.id)) >= limit:
            detail = (
                f"Maximum number of transcripts ({limit}) reached for this recording. "
                "Delete an existing transcript before creating a new one."
            )
            return _error(400, detail), "transcript_limit", True
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

    def _live_transcript(transcript_id: str) -> SimTranscript | None:
        transcript = sim.transcripts.get(transcript_id)
        return None if transcript is None or transcript.deleted else transcript

    @app.get("/api/v1/transcript/{transcript_id}/")
    async def retrieve_transcript(transcript_id: str, request: Request) -> Response:
        endpoint = Endpoint.RETRIEVE_TRANSCRIPT
        call = sim.record_call("GET", request.url.path, endpoint)
        call.transcript_id = transcript_id
        refused = await _guard(request, call, endpoint)
        if refused is not None:
            return refused
        wait = sim.rate_limited("retrieve", sim.config.retrieve_per_window)
        if wait is not None:
            return _finish(request, call, _rate_limited(wait), "rate_limited", endpoint)
        transcript = _live_transcript(transcript_id)
        if transcript is None:
            return _finish(request, call, _error(404, "Not found."), "not_found", endpoint)
        call.recording_id = transcript.recording_id
        return _finish(
            request, call, JSONResponse(sim.transcript_json(transcript, str(request.base_url))), "ok", endpoint
        )

    @app.get("/api/v1/transcript/")
    async def list_transcripts(request: Request) -> Response:
        endpoint = Endpoint.LIST_TRANSCRIPTS
        call = sim.record_call("GET", request.url.path, endpoint)
        refused = await _guard(request, call, endpoint)
        if refused is not None:
            return refused
        wait = sim.rate_limited("list", sim.config.list_per_window)
        if wait is not None:
            return _finish(request, call, _rate_limited(wait), "rate_limited", endpoint)
        params = dict(request.query_params)
        recording_id = params.get("recording_id")
        call.recording_id = recording_id
        after = 0
        if "cursor" in params:
            try:
                after = int(base64.urlsafe_b64decode(params["cursor"].encode() + b"==").decode())
            except (ValueError, binascii.Error, UnicodeDecodeError):
                return _finish(request, call, _error(404, "Invalid cursor"), "invalid", endpoint)
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
        return _finish(request, call, JSONResponse(body), "ok", endpoint)

    @app.delete("/api/v1/transcript/{transcript_id}/")
    async def delete_transcript(transcript_id: str, request: Request) -> Response:
        endpoint = Endpoint.DELETE_TRANSCRIPT
        call = sim.record_call("DELETE", request.url.path, endpoint)
        call.transcript_id = transcript_id
        refused = await _guard(request, call, endpoint)
        if refused is not None:
            return refused
        transcript = _live_transcript(transcript_id)
        if transcript is None:
            return _finish(request, call, _error(404, "Not found."), "not_found", endpoint)
        call.recording_id = transcript.recording_id
        sim.delete_transcript(transcript)
        return _finish(request, call, Response(status_code=204), "deleted", endpoint)

    @app.get("/api/v1/recording/{recording_id}/")
    async def retrieve_recording(recording_id: str, request: Request) -> Response:
        endpoint = Endpoint.RETRIEVE_RECORDING
        call = sim.record_call("GET", request.url.path, endpoint)
        call.recording_id = recording_id
        refused = await _guard(request, call, endpoint)
        if refused is not None:
            return refused
        recording = sim.recordings.get(recording_id)
        if recording is None:
            return _finish(request, call, _error(404, "Not found."), "not_found", endpoint)
        done = [t for t in sim.active_transcripts(recording.id) if t.status == "done"]
        latest = None
        if done:
            full = sim.transcript_json(max(done, key=lambda t: t.seq), str(request.base_url))
            latest = {key: full[key] for key in ("id", "created_at", "status", "data", "provider", "metadata")}
        return _finish(request, call, JSONResponse(recording.to_dict(latest)), "ok", endpoint)

    # --- pre-signed downloads (S3 in real life) --------------------------------------------------------------------

    @app.get("/files/{kind}/{transcript_id}.json")
    async def download(kind: str, transcript_id: str, request: Request) -> Response:
        endpoint = Endpoint.DOWNLOAD
        call = sim.record_call("GET", request.url.path, endpoint)
        call.transcript_id = transcript_id
        call.authorization_sent = "authorization" in request.headers
        if call.authorization_sent:
            response = _s3_error(400, "InvalidArgument", "Only one auth mechanism allowed")
            return _finish(request, call, response, "authorization_sent", endpoint)
        if kind not in {"transcripts", "provider-data"}:
            return _finish(
                request, call, _s3_error(404, "NoSuchKey", "The specified key does not exist."), "not_found", endpoint
            )
        problem = sim.check_signed(
            kind, transcript_id, request.query_params.get("X-Sim-Expires"), request.query_params.get("X-Sim-Signature")
        )
        if problem is not None:
            message = "Request has expired" if problem == "ExpiredToken" else "Access Denied"
            return _finish(request, call, _s3_error(403, "AccessDenied", message), problem, endpoint)
        fault = sim.fault(endpoint)
        if fault.latency_seconds:
            await asyncio.sleep(fault.latency_seconds)
        injected = sim.injected_error(endpoint)
        if injected is not None:
            return _finish(
                request, call, _s3_error(injected.status, "InternalError", "Simulated failure."), "injected", endpoint
            )
        transcript = _live_transcript(transcript_id)
        if transcript is None or transcript.status != "done":
            return _finish(
                request, call, _s3_error(404, "NoSuchKey", "The specified key does not exist."), "not_found", endpoint
            )
        call.recording_id = transcript.recording_id
        data = await sim.transcript_bytes(transcript) if kind == "transcripts" else sim.provider_bytes(transcript)
        if sim.config.download_chunked:
            chunks = (data[offset : offset + 65536] for offset in range(0, len(data), 65536))
            return _finish(request, call, StreamingResponse(chunks, media_type="application/json"), "ok", endpoint)
        return _finish(request, call, Response(data, media_type="application/json"), "ok", endpoint)

    @app.get("/api/v1/download/{kind}/{transcript_id}")
    async def download_redirect(kind: str, transcript_id: str, request: Request) -> Response:
        """A download URL on the API host: the token is the credential (no Authorization), the answer a redirect."""
        endpoint = Endpoint.DOWNLOAD
        call = sim.record_call("GET", request.url.path, endpoint)
        call.transcript_id = transcript_id
        call.authorization_sent = "authorization" in request.headers
        if call.authorization_sent:
            return _finish(
                request, call, _error(400, "Authorization is not accepted here."), "authorization_sent", endpoint
            )
        expires, _, signature = (request.query_params.get("token") or "").partition(".")
        problem = sim.check_signed(kind, transcript_id, expires, signature)
        if problem is not None:
            return _finish(request, call, _error(403, "Invalid or expired token."), problem, endpoint)
        base = (sim.config.public_url or str(request.base_url)).rstrip("/")
        location = sim.storage_url(base, kind, transcript_id, expires, signature)
        return _finish(request, call, Response(status_code=302, headers={"Location": location}), "redirected", endpoint)

    # --- admin API (tests and demos; not part of Recall) -----------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/admin/recordings", status_code=201)
    async def admin_create_recording(body: RecordingRequest) -> dict[str, Any]:
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

    @app.get("/admin/recordings")
    async def admin_recordings() -> list[dict[str, Any]]:
        return [recording.to_dict() for recording in sim.recordings.values()]

    @app.post("/admin/recordings/{recording_id}/status")
    async def admin_recording_status(recording_id: str, body: RecordingStatusRequest) -> dict[str, Any]:
        recording = sim.recordings.get(recording_id)
        if recording is None:
            raise HTTPException(404, "no such recording")
        sim.set_recording_status(recording, body.status, body.sub_code)
        return recording.to_dict()

    @app.get("/admin/transcripts")
    async def admin_transcripts(request: Request, recording_id: str | None = None) -> list[dict[str, Any]]:
        return [
            {
                **sim.transcript_json(t, str(request.base_url)),
                "deleted": t.deleted,
                "idempotency_key": t.idempotency_key,
            }
            for t in sorted(sim.transcripts.values(), key=lambda t: t.seq)
            if recording_id is None or t.recording_id == recording_id
        ]

    @app.post("/admin/transcripts/{transcript_id}/finish")
    async def admin_finish(transcript_id: str, body: FinishRequest) -> dict[str, Any]:
        transcript = sim.transcripts.get(transcript_id)
        if transcript is None:
            raise HTTPException(404, "no such transcript")
        changed = sim.finish_transcript(transcript, body.status, body.sub_code)
        return {"changed": changed, "status": transcript.status, "sub_code": transcript.sub_code}

    @app.get("/admin/calls")
    async def admin_calls(
        endpoint: str | None = None, recording_id: str | None = None, transcript_id: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            vars(call).copy()
            for call in sim.calls
            if (endpoint is None or call.endpoint == endpoint)
            and (recording_id is None or call.recording_id == recording_id)
            and (transcript_id is None or call.transcript_id == transcript_id)
        ]

    @app.get("/admin/deliveries")
    async def admin_deliveries(
        event: str | None = None, recording_id: str | None = None, transcript_id: str | None = None, body: bool = True
    ) -> list[dict[str, Any]]:
        return [
            delivery.to_dict(body=body)
            for delivery in sim.webhooks.deliveries
            if (event is None or delivery.event == event)
            and (recording_id is None or delivery.recording_id == recording_id)
            and (transcript_id is None or delivery.transcript_id == transcript_id)
        ]

    @app.post("/admin/webhooks", status_code=202)
    async def admin_send_event(body: EventRequest) -> dict[str, Any]:
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

    @app.get("/admin/faults")
    async def admin_faults() -> dict[str, Any]:
        return sim.faults.model_dump(mode="json")

    @app.put("/admin/faults")
    async def admin_set_faults(faults: Faults) -> dict[str, Any]:
        sim.faults = faults
        log.info("faults set", faults=faults.model_dump(mode="json"))
        return sim.faults.model_dump(mode="json")

    @app.delete("/admin/faults")
    async def admin_clear_faults() -> dict[str, Any]:
        sim.faults = Faults()
        return sim.faults.model_dump(mode="json")

    @app.get("/admin/config")
    async def admin_config() -> dict[str, Any]:
        return sim.config.public()

    @app.patch("/admin/config")
    async def admin_patch_config(patch: dict[str, Any]) -> dict[str, Any]:
        try:
            sim.config = RuntimeConfig.model_validate({**sim.config.model_dump(), **patch})
        except ValidationError as error:
            raise HTTPException(
                422, error.errors(include_url=False, include_input=False, include_context=False)
            ) from None
        return sim.config.public()

    @app.get("/admin/clock")
    async def admin_clock() -> dict[str, Any]:
        return {"now": sim.clock.now().isoformat(), "offset_seconds": sim.clock.offset}

    @app.post("/admin/clock")
    async def admin_advance_clock(body: ClockRequest) -> dict[str, Any]:
        sim.clock.offset += body.advance_seconds
        return {"now": sim.clock.now().isoformat(), "offset_seconds": sim.clock.offset}

    @app.post("/admin/reset")
    async def admin_reset() -> dict[str, str]:
        sim.reset()
        return {"status": "reset"}

    return app
