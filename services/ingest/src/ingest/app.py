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
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher
from ingest.receive import BodyTooLarge, WebhookReceiver, read_capped_body
from ingest.routing import ROUTED_TOPICS
from ingest.settings import IngestSettings
from pipeline_common.logging import get_logger
from pipeline_common.webhooks import WebhookVerifier

_log = get_logger("ingest")

__all__ = ["BodyTooLarge", "create_app", "read_capped_body"]


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
        producers=settings.ingest_kafka_producers,
        linger_ms=settings.ingest_kafka_linger_ms,
    )
    receiver = WebhookReceiver(settings, verifier, metrics, recent, kafka)

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
            response, outcome = await receiver.handle(request)
        except Exception:
            # FastAPI answers 500; count it, so an alert on ingest's 5xx sees bugs as well as Kafka outages.
            metrics.count_response("error", 500)
            raise
        finally:
            metrics.in_flight.dec()
        metrics.count_response(outcome, response.status_code)
        return response

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
