"""The simulator's HTTP plumbing shared by its routers: the app class that can drop a response, Recall-shaped errors,
and fault injection (auth, latency, injected errors) as one FastAPI dependency."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from pipeline_common.logging import get_logger
from pipeline_common.recall.providers import ProviderConfig
from recall_sim.config import Endpoint
from recall_sim.records import Call
from recall_sim.simulator import Simulator

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


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def s3_error(status: int, code: str, message: str) -> Response:
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>'
    return Response(body, status_code=status, media_type="application/xml")


def sim_of(request: Request) -> Simulator:
    sim: Simulator = request.app.state.sim
    return sim


def finish(request: Request, call: Call, response: Response, outcome: str, endpoint: Endpoint) -> Response:
    """Record the call's outcome; maybe drop the response (the work is done either way)."""
    if sim_of(request).should_garble(endpoint):
        # The work is done, but what comes back is a proxy's error page with a 200 (it happens).
        response = Response(b"<html><body>upstream hiccup</body></html>", status_code=200, media_type="text/html")
        outcome = f"{outcome}+garbled"
    call.status = response.status_code
    call.outcome = outcome
    if sim_of(request).should_drop(endpoint):
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


class Answered(Exception):
    """Raised by the fault-injection dependency: answer with ``response`` instead of running the handler."""

    def __init__(self, response: Response) -> None:
        super().__init__("answered by fault injection")
        self.response = response


async def answered(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Answered)
    return exc.response


def unauthorized(sim: Simulator, call: Call, header: str | None) -> Response | None:
    if sim.authorized(header):
        return None
    call.status, call.outcome = 401, "unauthorized"
    return error(401, "Invalid token." if header else "Authentication credentials were not provided.")


async def inject_faults(request: Request, call: Call, endpoint: Endpoint) -> Response | None:
    """Injected latency, then an injected error (with its Retry-After) or None: the one place faults are applied."""
    sim = sim_of(request)
    fault = sim.fault(endpoint)
    if fault.latency_seconds:
        started = time.monotonic()
        await asyncio.sleep(fault.latency_seconds)
        call.latency_ms = round((time.monotonic() - started) * 1000)
    injected = sim.injected_error(endpoint)
    if injected is None:
        return None
    headers = {}
    retry_after = injected.retry_after if injected.retry_after is not None else (1 if injected.status == 429 else None)
    if retry_after is not None:
        headers["Retry-After"] = f"{retry_after:g}"
    return error(injected.status, "Simulated failure.", headers)


def faults(endpoint: Endpoint, method: str) -> Callable[[Request], Awaitable[Call]]:
    """The dependency of every authenticated API endpoint: record the call, check the key, inject the configured
    latency and errors. The handler gets the :class:`Call` to fill in; an early answer skips it."""

    async def dependency(request: Request) -> Call:
        sim = sim_of(request)
        call = sim.record_call(method, request.url.path, endpoint)
        # Known before any early answer, so /admin/calls can filter refused and injected calls too.
        call.transcript_id = request.path_params.get("transcript_id")
        call.recording_id = request.path_params.get("recording_id")
        refused = unauthorized(sim, call, request.headers.get("authorization"))
        if refused is not None:
            raise Answered(refused)
        injected = await inject_faults(request, call, endpoint)
        if injected is not None:
            raise Answered(finish(request, call, injected, "injected", endpoint))
        return call

    return dependency


def guarded(endpoint: Endpoint, method: str) -> Any:
    return Depends(faults(endpoint, method))


def rate_limited(seconds: float) -> JSONResponse:
    wait = max(1, int(-(-seconds // 1)))
    return error(429, f"Request was throttled. Expected available in {wait} seconds.", {"Retry-After": str(wait)})


def validate_create(body: Any) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
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


async def read_json(request: Request) -> tuple[Any, Response | None]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None, error(413, "Request body too large.")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        return None, error(413, "Request body too large.")
    try:
        return json.loads(raw or b"null"), None
    except (ValueError, RecursionError):
        return None, error(400, "JSON parse error.")
