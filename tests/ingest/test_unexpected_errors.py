"""A bug in the webhook path answers 500 and is counted, so the 5xx alert (RecallIngestFailing) sees it."""

from __future__ import annotations

import httpx
import pytest

from ingest.app import create_app
from ingest.publisher import KafkaPublisher
from ingest.settings import IngestSettings
from tests.ingest.conftest import SECRET, recording_done, signed
from tests.support.http import free_port, serve_in_thread

pytestmark = pytest.mark.integration


class BrokenPublisher(KafkaPublisher):
    """Ready, but its publish raises what no handler expects (a bug, not a Kafka outage)."""

    async def start(self) -> None:
        return None

    async def stop(self, grace_seconds: float) -> None:
        return None

    @property
    def ready(self) -> bool:
        return True

    async def publish(self, *args: object, **kwargs: object) -> float:
        raise RuntimeError("a bug")


def test_an_unexpected_error_is_a_counted_500() -> None:
    settings = IngestSettings(  # type: ignore[call-arg]
        kafka_bootstrap_servers=[f"127.0.0.1:{free_port()}"], recall_webhook_secret=[SECRET]
    )
    with serve_in_thread(
        create_app(
            settings, publisher=BrokenPublisher(settings, required_topics=(), produce_timeout=1, check_interval=1)
        )
    ) as url:
        body = recording_done()
        response = httpx.post(f"{url}/webhooks/recall", content=body, headers=signed(body), timeout=10)
        assert response.status_code == 500
        scraped = httpx.get(f"{url}/metrics", timeout=10).text
    assert 'ingest_webhook_requests_total{outcome="error"} 1.0' in scraped
    assert 'ingest_webhook_responses_total{code="500"} 1.0' in scraped
    assert "ingest_in_flight_requests 0.0" in scraped
