"""Webhook delivery: signed with pipeline_common.webhooks, retried on Recall's schedule, faults on demand."""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import Iterator
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from pipeline_common.recall.events import parse_webhook_event
from pipeline_common.webhooks import (
    VerificationFailure,
    WebhookSecretError,
    WebhookVerificationFailed,
    WebhookVerifier,
)
from recall_sim.config import RETRY_SCHEDULE_SECONDS
from tests.support.recall_sim import RunningSim, WebhookReceiver, run_recall_sim, sim_settings
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PROVIDER = {"recallai_async": {"language_code": "auto"}}
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-for-the-rotation!").decode()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver().running() as running:
        yield running


@pytest.fixture
async def sim(recall_sim: RunningSim, receiver: WebhookReceiver) -> RunningSim:
    await recall_sim.admin.configure(webhook_url=receiver.url)
    return recall_sim


async def received(receiver: WebhookReceiver, count: int, timeout: float = 10) -> list[Any]:
    return await wait_for(
        lambda: receiver.received if len(receiver.received) >= count else None,
        timeout=timeout,
        interval=0.02,
        message=f"{count} webhooks received",
    )


async def test_the_flow_delivers_signed_events_that_verify_and_parse(
    sim: RunningSim, receiver: WebhookReceiver
) -> None:
    recording = await sim.admin.create_recording(metadata={"customer": "acme"})
    async with sim.client() as recall:
        transcript = await recall.create_transcript(recording["id"], PROVIDER, metadata={"attempt": "1"})
    await received(receiver, 3)
    verifier = WebhookVerifier(sim.webhook_secrets)
    events = []
    for item in receiver.received:
        verified = verifier.verify(item.body, item.headers)
        assert verified.webhook_id.startswith("msg_") and not verified.legacy_headers
        assert item.headers["content-type"] == "application/json"
        events.append(parse_webhook_event(item.body))
    assert [e.event for e in events] == ["recording.done", "transcript.processing", "transcript.done"]
    done = events[2]
    assert (done.recording_id, done.transcript_id, done.bot_id) == (
        recording["id"],
        transcript.id,
        recording["bot"]["id"],
    )
    assert done.recording_metadata == {"customer": "acme"} and done.transcript_metadata == {"attempt": "1"}
    assert events[0].updated_at and done.updated_at and done.updated_at >= events[1].updated_at  # type: ignore[operator]
    deliveries = await sim.admin.deliveries()
    assert [(d["event"], d["state"], d["delivered_count"]) for d in deliveries] == [
        ("recording.done", "delivered", 1),
        ("transcript.processing", "delivered", 1),
        ("transcript.done", "delivered", 1),
    ]


async def test_failures_carry_their_sub_code(sim: RunningSim, receiver: WebhookReceiver) -> None:
    await sim.admin.set_faults({"provider_failures": {"recallai_async": "provider_connection_failed"}})
    recording = await sim.admin.create_recording()
    async with sim.client() as recall:
        await recall.create_transcript(recording["id"], PROVIDER)
    await received(receiver, 3)
    failed = parse_webhook_event(receiver.by_event("transcript.failed")[0].body)
    assert (failed.code, failed.sub_code) == ("failed", "provider_connection_failed")


async def test_recording_failed_and_bot_null(sim: RunningSim, receiver: WebhookReceiver) -> None:
    await sim.admin.create_recording(status="failed", sub_code="recording_permission_denied", bot=False)
    (item,) = await received(receiver, 1)
    event = parse_webhook_event(item.body)
    assert (event.event, event.sub_code, event.bot_id) == ("recording.failed", "recording_permission_denied", None)
    assert item.json()["data"]["bot"] is None


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda body, headers: (body.replace(b'"done"', b'"fail"', 1), headers), VerificationFailure.BAD_SIGNATURE),
        (
            lambda body, headers: (body, {k: v for k, v in headers.items() if k != "webhook-id"}),
            VerificationFailure.MISSING_HEADERS,
        ),
        (
            lambda body, headers: (body, {**headers, "webhook-timestamp": "1000000000"}),
            VerificationFailure.STALE_TIMESTAMP,
        ),
    ],
)
async def test_tampered_deliveries_fail_verification(
    sim: RunningSim, receiver: WebhookReceiver, mutate: Any, reason: VerificationFailure
) -> None:
    await sim.admin.create_recording()
    (item,) = await received(receiver, 1)
    body, headers = mutate(item.body, item.headers)
    with pytest.raises(WebhookVerificationFailed) as caught:
        WebhookVerifier(sim.webhook_secrets).verify(body, headers)
    assert caught.value.reason is reason


async def test_a_wrong_secret_fails_verification(sim: RunningSim, receiver: WebhookReceiver) -> None:
    await sim.admin.create_recording()
    (item,) = await received(receiver, 1)
    with pytest.raises(WebhookVerificationFailed) as caught:
        WebhookVerifier([OTHER_SECRET]).verify(item.body, item.headers)
    assert caught.value.reason is VerificationFailure.BAD_SIGNATURE


async def test_a_signature_pasted_as_the_secret_is_refused_with_a_clear_reason(
    sim: RunningSim, receiver: WebhookReceiver
) -> None:
    await sim.admin.create_recording()
    (item,) = await received(receiver, 1)
    pasted = "v1," + sim.webhook_secrets[0]  # the "v1,whsec_..." misconfiguration
    with pytest.raises(WebhookSecretError, match="looks like a signature, not a secret") as caught:
        WebhookVerifier([pasted]).verify(item.body, item.headers)
    assert sim.webhook_secrets[0] not in str(caught.value)


async def test_rotation_signs_with_every_secret_and_legacy_headers(receiver: WebhookReceiver) -> None:
    settings = sim_settings(recall_sim_webhook_secret=[OTHER_SECRET, sim_settings().recall_sim_webhook_secret[0]])
    with run_recall_sim(settings) as sim:
        await sim.admin.configure(webhook_url=receiver.url, webhook_legacy_headers=True)
        await sim.admin.create_recording()
        (item,) = await received(receiver, 1)
    assert {"svix-id", "svix-timestamp", "svix-signature"} <= set(item.headers)
    assert len(item.headers["svix-signature"].split()) == 2
    for secret in sim.webhook_secrets:
        assert WebhookVerifier([secret]).verify(item.body, item.headers).legacy_headers


async def test_retries_follow_recalls_schedule_with_the_same_webhook_id(receiver: WebhookReceiver) -> None:
    receiver.script(500, 503, 404, 0)  # 0: never a valid status either; then 200
    scale = 0.00005
    with run_recall_sim(sim_settings(recall_sim_time_scale=scale)) as sim:
        await sim.admin.configure(webhook_url=receiver.url)
        await sim.admin.send_event(event="bot.done", bot_id="bot-1")
        (delivery,) = await sim.admin.wait_for_deliveries(1, timeout=10)
    assert len({item.headers["webhook-id"] for item in receiver.received}) == 1
    assert [attempt["status"] for attempt in delivery["attempts"]] == [500, 503, 404, None, 200]
    assert delivery["attempts"][3]["error"]
    times = [datetime.fromisoformat(attempt["at"]) for attempt in delivery["attempts"]]
    for number, (earlier, later) in enumerate(itertools.pairwise(times), start=1):
        assert (later - earlier).total_seconds() >= RETRY_SCHEDULE_SECONDS[number] * scale * 0.9
    # Each attempt is signed afresh (its own timestamp), always verifiable.
    verifier = WebhookVerifier(sim.webhook_secrets)
    assert all(verifier.verify(item.body, item.headers) for item in receiver.received)


async def test_a_delivery_is_given_up_after_the_whole_schedule(receiver: WebhookReceiver) -> None:
    receiver.default = 500
    with run_recall_sim(sim_settings(recall_sim_time_scale=0.00001)) as sim:
        await sim.admin.configure(webhook_url=receiver.url)
        await sim.admin.send_event(event="bot.done", bot_id="bot-1")
        (delivery,) = await sim.admin.wait_for_deliveries(1, state="failed", timeout=15)
    assert len(delivery["attempts"]) == len(RETRY_SCHEDULE_SECONDS) == 8
    assert len(receiver.received) == 8


async def test_a_slow_endpoint_times_out_and_is_retried(receiver: WebhookReceiver) -> None:
    receiver.stall(1.0)
    with run_recall_sim(sim_settings(recall_sim_webhook_timeout_seconds=0.2)) as sim:
        await sim.admin.configure(webhook_url=receiver.url)
        await sim.admin.send_event(event="bot.done", bot_id="bot-1")
        (delivery,) = await sim.admin.wait_for_deliveries(1, timeout=10)
    first, second = delivery["attempts"]
    assert first["status"] is None and "Timeout" in first["error"] and second["status"] == 200


async def test_duplicate_deliveries(sim: RunningSim, receiver: WebhookReceiver) -> None:
    await sim.admin.set_faults({"webhooks": {"duplicate_rate": 1.0}})
    await sim.admin.create_recording()
    first, second = await received(receiver, 2)
    assert first.body == second.body and first.headers["webhook-id"] == second.headers["webhook-id"]
    (delivery,) = await sim.admin.deliveries()
    assert [attempt["duplicate"] for attempt in delivery["attempts"]] == [False, True]
    assert delivery["delivered_count"] == 2


async def test_out_of_order_deliveries(sim: RunningSim, receiver: WebhookReceiver) -> None:
    await sim.admin.set_faults({"webhooks": {"out_of_order_rate": 1.0, "out_of_order_delay_seconds": 0.5}})
    recording = await sim.admin.create_recording()
    await sim.admin.clear_faults()
    await sim.admin.send_event(event="bot.done", bot_id=recording["bot"]["id"])
    first, second = await received(receiver, 2)
    assert (first.json()["event"], second.json()["event"]) == ("bot.done", "recording.done")
    held = await sim.admin.deliveries(event="recording.done")
    assert held[0]["held_back"] is True


async def test_processing_events_can_be_switched_off_and_subscriptions_filter(
    sim: RunningSim, receiver: WebhookReceiver
) -> None:
    await sim.admin.configure(processing_webhooks=False, webhook_events=["transcript.done"])
    recording = await sim.admin.create_recording()
    async with sim.client() as recall:
        await recall.create_transcript(recording["id"], PROVIDER)
    (item,) = await received(receiver, 1)
    assert item.json()["event"] == "transcript.done"
    assert [d["event"] for d in await sim.admin.deliveries()] == ["transcript.done"]


async def test_no_endpoint_means_nothing_is_sent(recall_sim: RunningSim) -> None:
    await recall_sim.admin.create_recording()
    (delivery,) = await recall_sim.admin.deliveries()
    assert delivery["state"] == "no_endpoint" and delivery["attempts"] == []


async def test_admin_can_send_any_event(sim: RunningSim, receiver: WebhookReceiver) -> None:
    raw = {"event": "calendar.update", "data": {"calendar_id": "c-1"}}
    await sim.admin.send_event(body=raw)
    await sim.admin.send_event(event="audio_mixed.done", recording_id="r-1", bot_id="b-1")
    # Each delivery is its own task: the two may arrive in either order.
    first, second = sorted(await received(receiver, 2), key=lambda item: item.json()["event"] != "calendar.update")
    assert first.json() == raw
    event = parse_webhook_event(second.body)
    assert (event.family, event.code, event.recording_id, event.bot_id) == ("audio_mixed", "done", "r-1", "b-1")


@pytest.mark.unit
async def test_an_unexpected_client_error_is_a_failed_attempt_and_the_delivery_is_retried() -> None:
    """Seen in chaos: connecting while ingest is SIGKILLed, anyio raised AttributeError ('NoneType' object has no
    attribute 'getpeername') out of httpx; the delivery task died and the webhook stayed pending forever."""
    from recall_sim.config import Faults, RuntimeConfig
    from recall_sim.webhooks import WebhookDispatcher

    config = RuntimeConfig(
        webhook_url="http://127.0.0.1:9/webhook",
        webhook_secrets=["whsec_" + base64.b64encode(b"k" * 24).decode()],
        time_scale=0.0001,
    )
    dispatcher = WebhookDispatcher(lambda: config, Faults, random.Random(1))
    calls = 0

    async def post(*_: Any, **__: Any) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise AttributeError("'NoneType' object has no attribute 'getpeername'")
        return httpx.Response(200)

    dispatcher._client = SimpleNamespace(post=post)  # type: ignore[assignment]
    delivery = dispatcher.send({"event": "bot.done", "data": {}})
    assert delivery is not None

    async def settled() -> bool:
        return delivery.state != "pending"

    assert await wait_for(settled, timeout=5, interval=0.01)
    assert delivery.state == "delivered"
    assert [(attempt.status, attempt.error) for attempt in delivery.attempts] == [(None, "AttributeError"), (200, None)]
