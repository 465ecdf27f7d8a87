"""The ingest HTTP edge: ``POST /webhooks/recall``, health, readiness and metrics.

2xx means the event is in Kafka. Everything else means Recall will send it again: 401 (not signed by us), 400 (not a
JSON object), 413 (too large, for us or for Kafka), 415 (not JSON), 503 (Kafka did not acknowledge in time). A
verified JSON object is always accepted: its shape decides only the topic (see ``routing``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ingest.dedup import RecentDeliveries
from ingest.metrics import IngestMetrics, event_type_label
from ingest.publisher import KafkaPublisher, PublishFailed, RecordTooLarge
from ingest.routing import ROUTED_TOPICS, NotAJsonObject, route_body
from ingest.settings import IngestSettings
from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.logging import get_logger
from pipeline_common.webhooks import WebhookVerificationFailed, WebhookVerifier

_log = get_logger("ingest")


class BodyTooLarge(Exception):
    pass


def _problem(status: int, error: str, reason: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "reason": reason}, status_code=status, headers=headers)


async def read_capped_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, or BodyTooLarge as soon as it is known to exceed ``max_bytes`` (never buffering past it)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def create_app(settings: IngestSettings, *, publisher: KafkaPublisher | None = None) -> FastAPI:
    verifier = WebhookVerifier(settings.recall_webhook_secret)
    metrics = IngestMetrics()
    recent = RecentDeliveries(settings.ingest_dedup_window_seconds, settings.ingest_dedup_max_entries)
    kafka = publisher or KafkaPublisher(
        settings,
        required_topics=ROUTED_TOPICS,
        produce_timeout=settings.ingest_produce_timeout_seconds,
        check_interval=settings.ingest_readiness_interval_seconds,
        max_request_bytes=settings.ingest_kafka_max_request_bytes,
    )
    retry_after = {"Retry-After": str(settings.ingest_retry_after_seconds)}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await kafka.start()
        yield
        # uvicorn has stopped accepting and finished in-flight requests by now; flush what the producer holds.
        await kafka.stop(settings.ingest_shutdown_timeout_seconds)
        _log.info("ingest stopped", producer_flushed=True)

    app = FastAPI(title="Recall webhook ingest", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.publisher = kafka
    app.state.metrics = metrics

    @app.post(
        "/webhooks/recall",
        responses={
            200: {"description": "written to Kafka (or a repeat of a delivery already written)"},
            400: {"description": "not a JSON object"},
            401: {"description": "signature, timestamp or headers invalid; nothing written"},
            413: {"description": "body over the size limit, or a record Kafka refuses as too large"},
            415: {"description": "content type is not JSON"},
            503: {"description": "Kafka did not acknowledge in time; retry later (Retry-After)"},
        },
    )
    async def receive_webhook(request: Request) -> Response:
        metrics.in_flight.inc()
        try:
            response, outcome = await _handle(request)
        except Exception:
            # FastAPI answers 500; count it, so an alert on ingest's 5xx sees bugs as well as Kafka outages.
            metrics.requests.labels(outcome="error").inc()
            metrics.responses.labels(code="500").inc()
            raise
        finally:
            metrics.in_flight.dec()
        metrics.requests.labels(outcome=outcome).inc()
        metrics.responses.labels(code=str(response.status_code)).inc()
        return response

    async def _handle(request: Request) -> tuple[Response, str]:
        if not _is_json(request.headers.get("content-type")):
            return _problem(415, "unsupported_media_type", "content-type must be application/json"), "unsupported"
        try:
            body = await read_capped_body(request, settings.ingest_max_body_bytes)
        except BodyTooLarge:
            reason = f"body is over {settings.ingest_max_body_bytes} bytes"
            return _problem(413, "body_too_large", reason, {"Connection": "close"}), "too_large"
        metrics.body_size.observe(len(body))

        try:
            delivery = verifier.verify(body, request.headers)
        except WebhookVerificationFailed as failure:
            metrics.verification_failures.labels(reason=failure.reason.value).inc()
            _log.warning("webhook rejected", reason=failure.reason.value, webhook_id=request.headers.get("webhook-id"))
            return _problem(401, failure.reason.value, str(failure)), "unauthorized"

        try:
            routed = route_body(body)
        except NotAJsonObject as invalid:
            _log.warning("webhook is not a JSON object", webhook_id=delivery.webhook_id, reason=str(invalid))
            return _problem(400, "invalid_event", str(invalid)), "invalid"

        if recent.seen(delivery.webhook_id):
            return JSONResponse({"status": "duplicate", "webhook_id": delivery.webhook_id}), "duplicate"

        destination = routed.route
        if not routed.recognised:
            _log.info(
                "webhook of an unrecognised shape accepted",
                webhook_id=delivery.webhook_id,
                event_type=routed.event_type,
                topic=destination.topic,
            )
        headers = build_headers(
            CloudEventAttributes(
                id=delivery.webhook_id,
                source=settings.ingest_event_source,
                type=routed.event_type,
                time=delivery.timestamp,
                subject=destination.key,
                traceparent=request.headers.get("traceparent"),
            )
        )
        key = destination.key.encode() if destination.key is not None else None
        try:
            latency = await kafka.publish(destination.topic, key, body, headers)
        except RecordTooLarge as failure:
            _log.error("webhook too large for Kafka", webhook_id=delivery.webhook_id, bytes=len(body))
            return _problem(413, "too_large_for_kafka", str(failure)), "too_large"
        except PublishFailed as failure:
            _log.error(
                "webhook not written", webhook_id=delivery.webhook_id, event_type=routed.event_type, reason=str(failure)
            )
            return _problem(503, "kafka_unavailable", str(failure), retry_after), "unavailable"
        metrics.produce_latency.observe(latency)
        metrics.events.labels(event_type=event_type_label(routed.event_type)).inc()
        recent.remember(delivery.webhook_id)
        # DEBUG: one line per accepted webhook costs measurable CPU at load; the metrics count them.
        _log.debug(
            "webhook accepted",
            webhook_id=delivery.webhook_id,
            event_type=routed.event_type,
            topic=destination.topic,
            key=destination.key,
        )
        return JSONResponse({"status": "accepted", "webhook_id": delivery.webhook_id}), "accepted"

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "alive"}

    @app.get("/readyz")
    async def readyz() -> Response:
        metrics.kafka_ready.set(1 if kafka.ready else 0)
        if kafka.ready:
            return JSONResponse({"status": "ready"})
        return JSONResponse({"status": "not_ready", "reason": kafka.reason}, status_code=503)

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        metrics.kafka_ready.set(1 if kafka.ready else 0)
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app
