"""One webhook delivery, decided: verify, route, drop a repeat, write to Kafka, and the response that tells Recall
whether to send it again (2xx: in Kafka; 400/401/413/415: never will be; 503: try later)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from ingest.dedup import RecentDeliveries
from ingest.metrics import IngestMetrics
from ingest.publisher import KafkaPublisher, PublishFailed, RecordTooLarge
from ingest.routing import NotAJsonObject, route_body
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


@dataclass(frozen=True, slots=True)
class WebhookReceiver:
    settings: IngestSettings
    verifier: WebhookVerifier
    metrics: IngestMetrics
    recent: RecentDeliveries
    kafka: KafkaPublisher

    async def handle(self, request: Request) -> tuple[Response, str]:
        """The response to one delivery and the outcome label it is counted under."""
        settings, metrics, kafka = self.settings, self.metrics, self.kafka
        if not _is_json(request.headers.get("content-type")):
            return _problem(415, "unsupported_media_type", "content-type must be application/json"), "unsupported"
        try:
            body = await read_capped_body(request, settings.ingest_max_body_bytes)
        except BodyTooLarge:
            reason = f"body is over {settings.ingest_max_body_bytes} bytes"
            return _problem(413, "body_too_large", reason, {"Connection": "close"}), "too_large"
        metrics.body_size.observe(len(body))

        try:
            delivery = self.verifier.verify(body, request.headers)
        except WebhookVerificationFailed as failure:
            metrics.verification_failures.labels(reason=failure.reason.value).inc()
            _log.warning("webhook rejected", reason=failure.reason.value, webhook_id=request.headers.get("webhook-id"))
            return _problem(401, failure.reason.value, str(failure)), "unauthorized"

        try:
            routed = route_body(body)
        except NotAJsonObject as invalid:
            _log.warning("webhook is not a JSON object", webhook_id=delivery.webhook_id, reason=str(invalid))
            return _problem(400, "invalid_event", str(invalid)), "invalid"

        if self.recent.seen(delivery.webhook_id):
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
            return _problem(
                503, "kafka_unavailable", str(failure), {"Retry-After": str(settings.ingest_retry_after_seconds)}
            ), "unavailable"
        metrics.produce_latency.observe(latency)
        metrics.count_event(routed.event_type)
        self.recent.remember(delivery.webhook_id)
        # DEBUG: one line per accepted webhook costs measurable CPU at load; the metrics count them.
        _log.debug(
            "webhook accepted",
            webhook_id=delivery.webhook_id,
            event_type=routed.event_type,
            topic=destination.topic,
            key=destination.key,
        )
        return JSONResponse({"status": "accepted", "webhook_id": delivery.webhook_id}), "accepted"
