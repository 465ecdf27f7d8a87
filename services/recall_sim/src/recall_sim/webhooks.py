"""Signed webhook delivery with Recall's retry schedule.

Each event becomes one message with a ``msg_...`` id, signed with :func:`pipeline_common.webhooks.sign_webhook` (one
``v1`` signature per configured secret, a fresh timestamp per attempt). A delivery that does not get a 2xx within the
timeout is retried after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h (times the time scale), always with the same
``webhook-id``. Faults: a duplicate delivery after a 2xx, and holding a delivery back so later ones overtake it.

Deliveries go out through aiohttp, not httpx: under load the simulator has a hundred deliveries in flight, and
httpcore's pool checks every pooled connection (a socket poll each) for every request it places, which made the
webhook client more than half of the simulator's CPU (``bench/FINDINGS.md``, section 2).
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import aiohttp

from pipeline_common.logging import get_logger
from pipeline_common.webhooks import sign_webhook
from recall_sim.config import RETRY_SCHEDULE_SECONDS, Faults, RuntimeConfig

log = get_logger("recall_sim.webhooks")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass
class Attempt:
    number: int
    at: str
    status: int | None
    error: str | None
    duration_ms: int
    duplicate: bool = False


@dataclass
class Delivery:
    id: str
    seq: int
    event: str
    body: str
    recording_id: str | None
    transcript_id: str | None
    bot_id: str | None
    created_at: str
    state: str = "pending"  # pending, delivered, failed (schedule exhausted), no_endpoint, cancelled, lost
    held_back: bool = False
    attempts: list[Attempt] = field(default_factory=list)

    def to_dict(self, *, body: bool = True) -> dict[str, Any]:
        data = asdict(self)
        if body:
            data["body"] = json.loads(self.body)
        else:
            del data["body"]
        data["delivered_count"] = sum(1 for attempt in self.attempts if attempt.status and 200 <= attempt.status < 300)
        return data


class _Status(Protocol):
    @property
    def status_code(self) -> int: ...


@dataclass(frozen=True, slots=True)
class _Answer:
    status_code: int


class _Poster(Protocol):
    # httpx's post shape (the tests stand one in); the timeout is aiohttp's per-phase one, not a whole-call deadline.
    async def post(self, url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> _Status: ...  # noqa: ASYNC109


class WebhookClient:
    """One pooled aiohttp session for every delivery. ``timeout`` bounds getting a connection (pool wait included)
    and each read, as httpx's did; the body of the answer is read so the connection goes back to the pool."""

    def __init__(self, user_agent: str) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=100),
            headers={"User-Agent": user_agent},
            trust_env=False,
            auto_decompress=False,
        )

    async def post(self, url: str, *, content: bytes, headers: dict[str, str], timeout: float) -> _Answer:  # noqa: ASYNC109
        limits = aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout)
        async with self._session.post(
            url, data=content, headers=headers, timeout=limits, allow_redirects=False
        ) as response:
            await response.read()
            return _Answer(response.status)

    async def aclose(self) -> None:
        await self._session.close()


class WebhookDispatcher:
    def __init__(self, config: Callable[[], RuntimeConfig], faults: Callable[[], Faults], rng: random.Random) -> None:
        self._config = config
        self._faults = faults
        self._rng = rng
        self.deliveries: list[Delivery] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: _Poster | None = None
        # (event type, recording id) -> True to "lose" the event: recorded, never delivered, as if Recall gave up.
        self.lose: Callable[[str, str | None], bool] | None = None

    async def start(self) -> None:
        self._client = WebhookClient("Svix-Webhooks/1.0 (recall-sim)")

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if isinstance(self._client, WebhookClient):
            await self._client.aclose()
        self._client = None

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for delivery in self.deliveries:
            if delivery.state == "pending":
                delivery.state = "cancelled"
        self.deliveries = []

    def subscribed(self, event: str) -> bool:
        events = self._config().webhook_events
        return events is None or event in events

    def send(
        self,
        body: dict[str, Any],
        *,
        recording_id: str | None = None,
        transcript_id: str | None = None,
        bot_id: str | None = None,
        force: bool = False,
    ) -> Delivery | None:
        """Queue one event for delivery; None when the endpoint is not subscribed to it."""
        event = str(body.get("event", ""))
        if not force and not self.subscribed(event):
            return None
        delivery = Delivery(
            id="msg_" + secrets.token_urlsafe(18).replace("-", "x").replace("_", "y"),
            seq=len(self.deliveries) + 1,
            event=event,
            body=json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            recording_id=recording_id,
            transcript_id=transcript_id,
            bot_id=bot_id,
            created_at=iso(datetime.now(UTC)),
        )
        self.deliveries.append(delivery)
        if self.lose is not None and self.lose(event, recording_id):
            delivery.state = "lost"
            log.info("webhook lost on purpose", webhook_id=delivery.id, event_type=event, recording_id=recording_id)
            return delivery
        config = self._config()
        if not config.webhook_url:
            delivery.state = "no_endpoint"
            log.info("webhook not sent: no endpoint configured", webhook_id=delivery.id, event_type=event)
            return delivery
        faults = self._faults().webhooks
        hold = 0.0
        if faults.out_of_order_rate and self._rng.random() < faults.out_of_order_rate:
            hold = faults.out_of_order_delay_seconds
            delivery.held_back = True
        duplicate = bool(faults.duplicate_rate and self._rng.random() < faults.duplicate_rate)
        task = asyncio.get_running_loop().create_task(self._run(delivery, hold, duplicate))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return delivery

    async def _run(self, delivery: Delivery, hold: float, duplicate: bool) -> None:
        try:
            if hold:
                await asyncio.sleep(hold)
            for number, wait in enumerate(RETRY_SCHEDULE_SECONDS, start=1):
                if wait:
                    await asyncio.sleep(wait * self._config().time_scale)
                if await self._attempt(delivery, number):
                    delivery.state = "delivered"
                    break
            else:
                delivery.state = "failed"
                log.warning("webhook delivery gave up", webhook_id=delivery.id, event_type=delivery.event)
                return
            if duplicate:
                await self._attempt(delivery, len(delivery.attempts) + 1, duplicate=True)
        except asyncio.CancelledError:
            if delivery.state == "pending":
                delivery.state = "cancelled"
            raise

    async def _attempt(self, delivery: Delivery, number: int, *, duplicate: bool = False) -> bool:
        config = self._config()
        assert self._client is not None
        body = delivery.body.encode()
        moment = datetime.now(UTC)
        headers = sign_webhook(
            config.webhook_secrets, delivery.id, body, timestamp=moment, legacy_headers=config.webhook_legacy_headers
        )
        headers["Content-Type"] = "application/json"
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            if not config.webhook_url:
                raise RuntimeError("no endpoint configured")
            response = await self._client.post(
                config.webhook_url, content=body, headers=headers, timeout=config.webhook_timeout_seconds
            )
            status = response.status_code
        except Exception as exc:
            # Any failure of an attempt is a failed attempt, retried as Recall would: an HTTP client can raise e.g.
            # AttributeError when the endpoint dies mid-connect, and the delivery's task must not die with it.
            error = type(exc).__name__
        duration_ms = round((time.monotonic() - started) * 1000)
        delivery.attempts.append(
            Attempt(
                number=number, at=iso(moment), status=status, error=error, duration_ms=duration_ms, duplicate=duplicate
            )
        )
        ok = status is not None and 200 <= status < 300
        log.info(
            "webhook attempt",
            webhook_id=delivery.id,
            event_type=delivery.event,
            attempt=number,
            status=status,
            error=error,
            duplicate=duplicate,
        )
        return ok
