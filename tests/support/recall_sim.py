"""The Recall simulator under a real uvicorn server on loopback, for any test that talks to "Recall".

Use the ``recall_sim`` fixture (import it into your conftest: ``from tests.support.recall_sim import recall_sim``),
or ``run_recall_sim(sim_settings(...))`` for custom settings. Each run gets a free port, its own state and a fresh
API key, and is stopped at the end. ``RunningSim.admin`` drives the admin API (create recordings, inject faults, read
what Recall saw); ``WebhookReceiver`` is a loopback endpoint that records what the simulator delivers.

    async def test_something(recall_sim: RunningSim) -> None:
        recording = await recall_sim.admin.create_recording()
        async with recall_sim.client() as recall:
            await recall.create_transcript(recording["id"], {"recallai_async": {}})
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pipeline_common.recall.client import RecallClient
from recall_sim.app import create_app
from recall_sim.settings import SimSettings
from tests.support.http import serve_in_thread
from tests.support.waiting import wait_for

# One TLS context for every test client: httpx loads a CA bundle per client otherwise (about 50 ms each).
SSL_CONTEXT = ssl.create_default_context()
TEST_WEBHOOK_SECRET = (
    "whsec_" + "dGVzdC1zZWNyZXQtb2YtdGhlLXNpbXVsYXRvci0zMmI="
)  # base64("test-secret-of-the-simulator-32b")


def sim_settings(**overrides: Any) -> SimSettings:
    """Test-friendly settings: fast transcripts, Recall's retry schedule compressed 2000x, a fresh API key."""
    values: dict[str, Any] = {
        "recall_sim_api_key": SecretStr("sim-" + secrets.token_hex(12)),
        "recall_sim_webhook_secret": [SecretStr(TEST_WEBHOOK_SECRET)],
        "recall_sim_transcript_delay_seconds": 0.05,
        "recall_sim_time_scale": 0.0005,
        "recall_sim_webhook_timeout_seconds": 5.0,
        "recall_sim_transcript_words": 120,
    }
    values.update(overrides)
    return SimSettings(**values)


class SimAdmin:
    """The simulator's admin API (not part of Recall)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10, trust_env=False, verify=SSL_CONTEXT) as client:
            response = await client.request(method, path, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    async def create_recording(self, **fields: Any) -> dict[str, Any]:
        """Fields: id, bot_id, bot (False: no bot), metadata, bot_metadata, status (done), sub_code,
        transcript (words, target_bytes, speakers, language_code, empty, ...), webhooks (True: fire recording.*)."""
        result: dict[str, Any] = await self.request("POST", "/admin/recordings", json=fields)
        return result

    async def set_recording_status(self, recording_id: str, status: str, sub_code: str | None = None) -> Any:
        return await self.request(
            "POST", f"/admin/recordings/{recording_id}/status", json={"status": status, "sub_code": sub_code}
        )

    async def transcripts(self, recording_id: str | None = None) -> list[dict[str, Any]]:
        params = {"recording_id": recording_id} if recording_id else {}
        result: list[dict[str, Any]] = await self.request("GET", "/admin/transcripts", params=params)
        return result

    async def finish_transcript(
        self, transcript_id: str, status: str | None = None, sub_code: str | None = None
    ) -> Any:
        return await self.request(
            "POST", f"/admin/transcripts/{transcript_id}/finish", json={"status": status, "sub_code": sub_code}
        )

    async def calls(self, **filters: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/admin/calls", params=filters)
        return result

    async def deliveries(self, **filters: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = await self.request("GET", "/admin/deliveries", params=filters)
        return result

    async def wait_for_deliveries(
        self, count: int, *, state: str | None = "delivered", timeout: float = 10.0, **filters: str
    ) -> list[dict[str, Any]]:
        """Wait until ``count`` matching deliveries exist (in ``state``, when given); return them all."""

        async def enough() -> list[dict[str, Any]] | None:
            found = [d for d in await self.deliveries(**filters) if state is None or d["state"] == state]
            return found if len(found) >= count else None

        return await wait_for(enough, timeout=timeout, message=f"{count} deliveries {filters} in state {state}")

    async def send_event(self, **fields: Any) -> dict[str, Any]:
        """``body={...}`` sends a raw event; or event=, recording_id=, transcript_id=, bot_id=, code=, sub_code=."""
        result: dict[str, Any] = await self.request("POST", "/admin/webhooks", json=fields)
        return result

    async def set_faults(self, faults: dict[str, Any]) -> Any:
        """E.g. ``{"endpoints": {"create_transcript": {"fail_next": 2, "status": 503}},
        "provider_failures": {"deepgram_async": "provider_connection_failed"},
        "webhooks": {"duplicate_rate": 1.0}}``."""
        return await self.request("PUT", "/admin/faults", json=faults)

    async def clear_faults(self) -> Any:
        return await self.request("DELETE", "/admin/faults")

    async def configure(self, **patch: Any) -> dict[str, Any]:
        """Change run-time config: webhook_url, transcript_delay_seconds, download_url_ttl_seconds, time_scale,
        transcript_limit, create_per_bot_per_window, rate_window_seconds, page_size, ..."""
        result: dict[str, Any] = await self.request("PATCH", "/admin/config", json=patch)
        return result

    async def advance_clock(self, seconds: float) -> Any:
        return await self.request("POST", "/admin/clock", json={"advance_seconds": seconds})

    async def reset(self) -> Any:
        return await self.request("POST", "/admin/reset")


@dataclass
class RunningSim:
    base_url: str
    settings: SimSettings
    admin: SimAdmin

    @property
    def api_key(self) -> str:
        return self.settings.recall_sim_api_key.get_secret_value()

    @property
    def webhook_secrets(self) -> list[str]:
        return [secret.get_secret_value() for secret in self.settings.recall_sim_webhook_secret]

    def client(self, **options: Any) -> RecallClient:
        """A RecallClient pointed at the simulator with its key."""
        options.setdefault("timeout", 10.0)
        return RecallClient(api_key=self.api_key, base_url=self.base_url, **options)


@contextmanager
def run_recall_sim(settings: SimSettings | None = None) -> Iterator[RunningSim]:
    settings = settings or sim_settings()
    with serve_in_thread(create_app(settings), name="recall-sim") as base_url:
        yield RunningSim(base_url=base_url, settings=settings, admin=SimAdmin(base_url))


@pytest.fixture
def recall_sim() -> Iterator[RunningSim]:
    """A fresh simulator per test (about 50 ms to start)."""
    with run_recall_sim() as sim:
        yield sim


@dataclass
class ReceivedWebhook:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class WebhookReceiver:
    """A loopback HTTP endpoint that records every POST and answers with scripted statuses (then ``default``)."""

    default: int = 200
    statuses: deque[int] = field(default_factory=deque)
    delays: deque[float] = field(default_factory=deque)
    received: list[ReceivedWebhook] = field(default_factory=list)
    url: str = ""

    def script(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (then ``default``)."""
        self.statuses.extend(statuses)

    def stall(self, *seconds: float) -> None:
        """Wait this long before answering the next requests (to exceed the sender's timeout)."""
        self.delays.extend(seconds)

    def by_event(self, event: str) -> list[ReceivedWebhook]:
        return [item for item in self.received if item.json().get("event") == event]

    @contextmanager
    def running(self) -> Iterator[WebhookReceiver]:
        receiver = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with lock:
                    status = receiver.statuses.popleft() if receiver.statuses else receiver.default
                    delay = receiver.delays.popleft() if receiver.delays else 0.0
                    receiver.received.append(
                        ReceivedWebhook(self.path, {k.lower(): v for k, v in self.headers.items()}, body, status)
                    )
                if delay:
                    time.sleep(delay)  # a slow endpoint, on purpose
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        self.url = f"http://127.0.0.1:{server.server_address[1]}/webhooks/recall"
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
