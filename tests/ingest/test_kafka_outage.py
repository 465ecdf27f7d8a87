"""Kafka goes away mid-test: no 2xx for anything not on its topic; Recall's retries land once it is back.

Uses a broker of its own (scripts/kafka-local in a temporary state dir) so that stopping it disturbs no other test.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ingest.app import create_app
from pipeline_common.cloudevents import parse_headers
from tests.ingest.conftest import ingest_settings, recording_done, signed
from tests.support.broker import Broker, free_port_pair
from tests.support.http import serve_in_thread
from tests.support.kafka import KafkaTestClient
from tests.support.waiting import wait_for_sync

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PRODUCE_TIMEOUT = 2.0


@pytest.fixture
def own_broker() -> Iterator[Broker]:
    state = Path(tempfile.mkdtemp(prefix="kafka-outage-"))
    port = free_port_pair()
    broker = Broker(bootstrap_servers=f"127.0.0.1:{port}", origin="local", state_dir=state, port=port)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_outage_gives_503_and_retries_land_after_recovery(own_broker: Broker) -> None:
    settings = ingest_settings(own_broker.bootstrap_servers, ingest_produce_timeout_seconds=PRODUCE_TIMEOUT)
    kafka = KafkaTestClient(own_broker.bootstrap_servers)
    with serve_in_thread(create_app(settings)) as url, httpx.Client(base_url=url, timeout=60) as client:
        wait_for_sync(lambda: client.get("/readyz").status_code == 200, timeout=60, message="ready")
        before = recording_done()
        before_headers = signed(before)
        # A new broker may answer NotLeaderForPartition for a moment after the topic is created: like Recall, post
        # again (the same delivery) until it is written, before taking the broker away.
        wait_for_sync(
            lambda: client.post("/webhooks/recall", content=before, headers=before_headers).status_code == 200,
            timeout=60,
            message="the first webhook written before the outage",
        )

        own_broker.stop()

        during = [recording_done() for _ in range(3)]
        during_headers = [signed(body) for body in during]
        for body, headers in zip(during, during_headers, strict=True):
            started = time.monotonic()
            response = client.post("/webhooks/recall", content=body, headers=headers)
            elapsed = time.monotonic() - started
            assert response.status_code == 503, response.text
            assert response.headers["retry-after"] == "5"
            assert response.json()["error"] == "kafka_unavailable"
            # Bounded: the producer alone would wait for the broker indefinitely.
            assert elapsed < PRODUCE_TIMEOUT + 10
        wait_for_sync(lambda: client.get("/readyz").status_code == 503, timeout=30, message="not ready")
        assert client.get("/healthz").status_code == 200  # alive: nothing to restart

        own_broker.start()
        wait_for_sync(lambda: client.get("/readyz").status_code == 200, timeout=90, message="ready again")

        # Recall retries each delivery with the same webhook-id, the same body, and a fresh signature.
        for body, headers in zip(during, during_headers, strict=True):
            retried = signed(body, webhook_id=headers["webhook-id"])
            wait_for_sync(
                lambda retried=retried, body=body: (
                    client.post("/webhooks/recall", content=body, headers=retried).status_code == 200
                ),
                timeout=60,
                message="retry accepted",
            )

    expected = {before_headers["webhook-id"]: before} | {
        headers["webhook-id"]: body for body, headers in zip(during, during_headers, strict=True)
    }
    records = asyncio.run(
        kafka.consume(
            "recall.recording.events",
            until=lambda rs: expected.keys() <= {parse_headers(r.headers).id for r in rs},
            timeout=60,
        )
    )
    for record in records:
        webhook_id = parse_headers(record.headers).id
        # Every copy on the topic is exactly what was sent. (A copy of an un-acknowledged attempt may also arrive
        # once the broker is back: at-least-once, absorbed by idempotent consumers.)
        assert record.value == expected[webhook_id]
    assert {parse_headers(r.headers).id for r in records} == set(expected)
