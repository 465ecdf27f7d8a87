"""One recording through the images: the simulator, ingest, the transcriber and the fetcher each run from its image
(host network, read-only root, the manifests' tmpfs mounts) against a broker on a free loopback port, and the
recording comes out on transcripts.ready."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from aiokafka import ConsumerRecord

from pipeline_common.contracts import TranscriptReady
from tests.containers.harness import SERVICES, Running, base_env, running
from tests.support.broker import Broker
from tests.support.http import free_port
from tests.support.kafka import KafkaTestClient

pytestmark = [pytest.mark.container, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline(images: dict[str, str], kafka_broker: Broker) -> Iterator[dict[str, Running]]:
    ports = {name: free_port() for name in SERVICES}
    env = base_env(kafka_broker.bootstrap_servers, sim_port=ports["recall-sim"], ingest_port=ports["ingest"])
    with ExitStack() as stack:
        started = {
            name: stack.enter_context(running(SERVICES[name], images[name], ports[name], env))
            for name in ("recall-sim", "ingest", "transcriber", "fetcher")
        }
        for container in started.values():
            container.wait_healthy("/admin/config" if container.service.image == "recall-sim" else "/readyz")
        yield started


def test_a_recording_goes_through_the_images_to_transcripts_ready(
    pipeline: dict[str, Running], kafka_bootstrap: str
) -> None:
    sim = pipeline["recall-sim"]
    created = httpx.post(f"{sim.base_url}/admin/recordings", json={}, timeout=10)
    assert created.status_code == 201, created.text
    recording_id = created.json()["id"]

    def announced(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        # The session's broker is shared: other tests' records on transcripts.ready need not be events at all.
        return any(record.key == recording_id.encode() for record in records)

    try:
        records = asyncio.run(
            KafkaTestClient(kafka_bootstrap).consume("transcripts.ready", until=announced, timeout=120)
        )
    except AssertionError:
        logs = "\n".join(f"--- {name}\n{container.logs()}" for name, container in pipeline.items())
        raise AssertionError(f"{recording_id} never reached transcripts.ready; container logs:\n{logs}") from None
    (event,) = [TranscriptReady.model_validate_json(r.value) for r in records if r.key == recording_id.encode()]
    assert event.recording_id == recording_id
    fetcher = pipeline["fetcher"]
    status = httpx.get(f"{fetcher.base_url}/recordings/{recording_id}", timeout=10)
    assert status.status_code == 200, status.text
