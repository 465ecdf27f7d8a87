"""The webhook endpoint on a real uvicorn server and a real broker: what lands, and what never does."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from pipeline_common.cloudevents import parse_headers
from tests.ingest.conftest import OTHER_SECRET, IngestUnderTest, recording_done, signed

pytestmark = pytest.mark.integration


async def landed(ingest: IngestUnderTest, topic: str, webhook_id: str, timeout: float = 30) -> list[object]:
    records = await ingest.kafka.consume(
        topic, until=lambda rs: any(dict(r.headers).get("ce_id") == webhook_id.encode() for r in rs), timeout=timeout
    )
    return [r for r in records if dict(r.headers).get("ce_id") == webhook_id.encode()]


async def test_a_signed_recording_done_lands_byte_for_byte_with_cloudevents_headers(ingest: IngestUnderTest) -> None:
    body = recording_done("rec-landing-" + uuid.uuid4().hex)
    moment = datetime.now(UTC).replace(microsecond=0)
    headers = signed(body, webhook_id="msg_landing_" + uuid.uuid4().hex, timestamp=moment)
    headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

    response = ingest.post(body, headers)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    (record,) = await landed(ingest, "recall.recording.events", headers["webhook-id"])
    recording_id = json.loads(body)["data"]["recording"]["id"]
    assert record.value == body  # type: ignore[attr-defined]
    assert record.key == recording_id.encode()  # type: ignore[attr-defined]
    attributes = parse_headers(record.headers)  # type: ignore[attr-defined]
    assert attributes.id == headers["webhook-id"]
    assert attributes.type == "recording.done"
    assert attributes.subject == recording_id
    assert attributes.time == moment
    assert attributes.datacontenttype == "application/json"
    assert attributes.traceparent == headers["traceparent"]


async def test_legacy_svix_headers_are_accepted(ingest: IngestUnderTest) -> None:
    body = recording_done()
    headers = signed(body, legacy_headers=True)
    assert ingest.post(body, headers).status_code == 200
    assert len(await landed(ingest, "recall.recording.events", headers["svix-id"])) == 1


async def test_transcript_and_bot_and_unknown_events_are_routed(ingest: IngestUnderTest) -> None:
    status = {"code": "x", "sub_code": None, "updated_at": datetime.now(UTC).isoformat()}
    cases = {
        "recall.transcript.events": {
            "event": "transcript.failed",
            "data": {
                "data": status,
                "transcript": {"id": "t-1", "metadata": {}},
                "recording": {"id": "r-1", "metadata": {}},
                "bot": None,
            },
        },
        "recall.bot.events": {
            "event": "bot.call_ended",
            "data": {"data": status, "bot": {"id": "b-1", "metadata": {}}},
        },
        "recall.other.events": {"event": "calendar.update", "data": {"calendar_id": "c-1"}},
    }
    for topic, payload in cases.items():
        body = json.dumps(payload).encode()
        headers = signed(body)
        assert ingest.post(body, headers).status_code == 200
        (record,) = await landed(ingest, topic, headers["webhook-id"])
        assert record.value == body  # type: ignore[attr-defined]


async def test_a_repeated_delivery_is_acknowledged_but_written_once(ingest: IngestUnderTest) -> None:
    body = recording_done()
    headers = signed(body)
    first, second = ingest.post(body, headers), ingest.post(body, headers)
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.json()["status"] == "duplicate"
    third_id = signed(body)  # a new delivery id is a new delivery, even with the same body
    assert ingest.post(body, third_id).json()["status"] == "accepted"
    await landed(ingest, "recall.recording.events", third_id["webhook-id"])
    assert len(await landed(ingest, "recall.recording.events", headers["webhook-id"])) == 1


def stale(body: bytes) -> dict[str, str]:
    return signed(body, timestamp=datetime.now(UTC) - timedelta(minutes=6))


def future(body: bytes) -> dict[str, str]:
    return signed(body, timestamp=datetime.now(UTC) + timedelta(minutes=6))


def without(name: str) -> object:
    def headers(body: bytes) -> dict[str, str]:
        result = signed(body)
        del result[name]
        return result

    return headers


BODY = recording_done("rec-rejections")
REJECTIONS = [
    ("tampered body", BODY.replace(b"sales", b"sa1es"), lambda b: signed(BODY), 401, "bad_signature"),
    ("wrong secret", BODY, lambda b: signed(b, secret=OTHER_SECRET), 401, "bad_signature"),
    ("stale timestamp", BODY, stale, 401, "stale_timestamp"),
    ("future timestamp", BODY, future, 401, "future_timestamp"),
    ("missing id", BODY, without("webhook-id"), 401, "missing_headers"),
    ("missing timestamp", BODY, without("webhook-timestamp"), 401, "missing_headers"),
    ("missing signature", BODY, without("webhook-signature"), 401, "missing_headers"),
    ("no headers", BODY, lambda b: {"content-type": "application/json"}, 401, "missing_headers"),
    ("malformed signature", BODY, lambda b: signed(b) | {"webhook-signature": "v1"}, 401, "malformed_signature"),
    ("malformed timestamp", BODY, lambda b: signed(b) | {"webhook-timestamp": "soon"}, 401, "malformed_timestamp"),
    ("empty body, signed", b"", signed, 400, "invalid_event"),
    ("empty body, unsigned", b"", lambda b: {"content-type": "application/json"}, 401, "missing_headers"),
    ("not JSON, signed", b"<xml/>", signed, 400, "invalid_event"),
    ("not UTF-8", b"\xff\xfe{}", lambda b: signed(b"{}"), 401, "body_not_utf8"),
    ("JSON array, signed", b"[1, 2]", signed, 400, "invalid_event"),
    ("JSON string, signed", b'"recording.done"', signed, 400, "invalid_event"),
    ("wrong content type", BODY, lambda b: signed(b) | {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    ("no content type", BODY, lambda b: {k: v for k, v in signed(b).items() if k != "content-type"}, 415, None),
    ("oversized", b'{"x": "' + b"a" * 2_000_000 + b'"}', signed, 413, "body_too_large"),
]


@pytest.mark.parametrize(
    ("body", "headers", "status", "error"), [case[1:] for case in REJECTIONS], ids=[case[0] for case in REJECTIONS]
)
async def test_every_rejection_has_its_status_and_writes_nothing(
    ingest: IngestUnderTest, body: bytes, headers: object, status: int, error: str | None
) -> None:
    before = await ingest.offsets()
    response = ingest.post(body, headers(body))  # type: ignore[operator]
    assert response.status_code == status, response.text
    if error is not None:
        assert response.json()["error"] == error
    assert "whsec_" not in response.text
    assert await ingest.offsets() == before


async def test_oversized_chunked_body_is_refused_without_a_content_length(ingest: IngestUnderTest) -> None:
    before = await ingest.offsets()

    def chunks() -> Iterator[bytes]:
        yield b'{"x": "'
        for _ in range(64):
            yield b"a" * 65_536

    headers = signed(b"{}")
    response = ingest.client.post("/webhooks/recall", content=chunks(), headers=headers)
    assert response.status_code == 413
    assert await ingest.offsets() == before


async def test_wrong_method_is_405(ingest: IngestUnderTest) -> None:
    assert ingest.client.get("/webhooks/recall").status_code == 405
    assert ingest.client.put("/webhooks/recall", content=b"{}").status_code == 405


async def test_metrics_count_outcomes_and_verification_failures(ingest: IngestUnderTest) -> None:
    body = recording_done()
    ingest.post(body, signed(body))
    ingest.post(body, signed(body, secret=OTHER_SECRET))
    text = ingest.client.get("/metrics").text
    assert 'ingest_webhook_requests_total{outcome="accepted"} 1.0' in text
    assert 'ingest_webhook_requests_total{outcome="unauthorized"} 1.0' in text
    assert 'ingest_webhook_responses_total{code="200"} 1.0' in text
    assert 'ingest_webhook_responses_total{code="401"} 1.0' in text
    assert 'ingest_webhook_verification_failures_total{reason="bad_signature"} 1.0' in text
    assert "ingest_produce_latency_seconds_count 1.0" in text
    assert "ingest_webhook_body_bytes_count 2.0" in text
    assert "ingest_in_flight_requests 0.0" in text
    assert "ingest_kafka_ready 1.0" in text


async def test_health_and_readiness(ingest: IngestUnderTest) -> None:
    assert ingest.client.get("/healthz").json() == {"status": "alive"}
    assert ingest.client.get("/readyz").json() == {"status": "ready"}


def test_openapi_documents_the_statuses(ingest: IngestUnderTest) -> None:
    spec = httpx.get(f"{ingest.url}/openapi.json").json()
    documented = set(spec["paths"]["/webhooks/recall"]["post"]["responses"])
    assert {"200", "400", "401", "413", "415", "503"} <= documented


async def test_recalls_bot_status_change_with_bot_id_is_accepted_and_keyed_by_it(ingest: IngestUnderTest) -> None:
    # Issue 14 item 2: Recall's bot.status_change carries data.bot_id; refusing it makes Recall retry for a day.
    body = json.dumps(
        {"event": "bot.status_change", "data": {"bot_id": "bot-legacy-1", "status": {"code": "in_call_recording"}}}
    ).encode()
    headers = signed(body)
    response = ingest.post(body, headers)
    assert response.status_code == 200, response.text
    (record,) = await landed(ingest, "recall.bot.events", headers["webhook-id"])
    assert record.key == b"bot-legacy-1"  # type: ignore[attr-defined]
    assert record.value == body  # type: ignore[attr-defined]


async def test_a_verified_object_of_unknown_shape_goes_to_other_events(ingest: IngestUnderTest) -> None:
    body = b'{"event": "recording.done", "data": {"recording_id": "r-odd"}}'
    headers = signed(body)
    assert ingest.post(body, headers).status_code == 200
    (record,) = await landed(ingest, "recall.other.events", headers["webhook-id"])
    assert record.key == b"r-odd"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", b"999999999999"),
        ("webhook-timestamp", b"\xb2"),  # latin-1 superscript two: isdigit() but not int()
        ("webhook-timestamp", b"\xb9\xb2\xb3"),
        ("webhook-id", b"\xff\xfe"),
        ("webhook-signature", b"v1,\xb2\xb2"),
    ],
)
async def test_malformed_header_values_are_4xx_never_5xx(ingest: IngestUnderTest, name: str, value: bytes) -> None:
    # Issue 14 item 1: these raised ValueError in the verifier (500 and a traceback).
    before = await ingest.offsets()
    body = recording_done()
    headers: dict[str, str | bytes] = {**signed(body), name: value}
    response = ingest.client.post("/webhooks/recall", content=body, headers=headers)
    assert response.status_code in {400, 401}, response.text
    assert await ingest.offsets() == before


async def test_a_body_kafka_cannot_take_is_a_clear_413_and_ingest_stays_ready(
    make_ingest: Callable[..., IngestUnderTest],
) -> None:
    # Issue 14 item 3: a body under the cap but over what Kafka takes answered 503 and marked ingest unready.
    service = make_ingest(ingest_max_body_bytes=2 * 1024 * 1024, ingest_kafka_max_request_bytes=4 * 1024 * 1024)
    service.wait_ready()
    body = b'{"event": "calendar.update", "data": {"pad": "' + b"x" * 1_500_000 + b'"}}'
    configs = await service.kafka.describe_topic_configs("recall.other.events")
    assert int(configs.get("max.message.bytes", "1048588")) < len(body), "the broker would accept this body"
    response = service.post(body, signed(body))
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large_for_kafka"
    assert service.client.get("/readyz").status_code == 200
    small = recording_done()
    assert service.post(small, signed(small)).status_code == 200
