from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest

from ingest.app import create_app
from ingest.routing import ROUTED_TOPICS
from ingest.settings import IngestSettings
from pipeline_common.webhooks import sign_webhook
from tests.support.http import serve_in_thread
from tests.support.kafka import KafkaTestClient
from tests.support.waiting import wait_for_sync

SECRET = "whsec_" + base64.b64encode(b"ingest-test-secret-0123456789abc").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a-secret-recall-never-gave-us!!!").decode()


def recording_done(recording_id: str | None = None, *, event: str = "recording.done") -> bytes:
    recording_id = recording_id or f"rec-{uuid.uuid4()}"
    body = {
        "event": event,
        "data": {
            "data": {"code": event.split(".")[1], "sub_code": None, "updated_at": datetime.now(UTC).isoformat()},
            "recording": {"id": recording_id, "metadata": {"team": "sales"}},
            "bot": {"id": f"bot-{recording_id}", "metadata": {}},
        },
    }
    # Deliberately not json.dumps' default spacing: the value on Kafka must be these exact bytes.
    return json.dumps(body, separators=(", ", ":  ")).encode()


def signed(body: bytes, *, webhook_id: str | None = None, secret: str = SECRET, **kwargs: object) -> dict[str, str]:
    headers = sign_webhook([secret], webhook_id or f"msg_{uuid.uuid4().hex}", body, **kwargs)  # type: ignore[arg-type]
    return {**headers, "content-type": "application/json"}


@dataclass
class IngestUnderTest:
    url: str
    kafka: KafkaTestClient
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def post(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.client.post("/webhooks/recall", content=body, headers=headers)

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for_sync(lambda: self.client.get("/readyz").status_code == 200, timeout=timeout, message="ingest ready")

    async def offsets(self) -> dict[str, dict[int, int]]:
        return {topic: await self.kafka.end_offsets(topic) for topic in ROUTED_TOPICS}


def ingest_settings(bootstrap: str, **overrides: object) -> IngestSettings:
    values: dict[str, object] = {
        "kafka_bootstrap_servers": [bootstrap],
        "recall_webhook_secret": [SECRET],
        "ingest_produce_timeout_seconds": 2.0,
        "ingest_readiness_interval_seconds": 0.5,
        **overrides,
    }
    return IngestSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def make_ingest(kafka: KafkaTestClient) -> Iterator[Callable[..., IngestUnderTest]]:
    stack: list[Iterator[str]] = []

    def make(**overrides: object) -> IngestUnderTest:
        server = serve_in_thread(create_app(ingest_settings(kafka.bootstrap_servers, **overrides)))
        url = server.__enter__()
        stack.append(server)
        return IngestUnderTest(url, kafka)

    yield make
    for server in reversed(stack):
        server.__exit__(None, None, None)


@pytest.fixture
def ingest(make_ingest: Callable[..., IngestUnderTest]) -> IngestUnderTest:
    service = make_ingest()
    service.wait_ready()
    return service
