"""ingest, transcriber and fetcher as real processes against the secured broker, each with its own Kafka identity and
nothing but the ACLs derived from the topic registry: SCRAM-SHA-512 over TLS, then mutual TLS. Recordings go in at the
Recall simulator and come out on ``transcripts.ready``, read by a downstream client over TLS."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import Iterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer

from devkit import stack
from pipeline_common.settings import KafkaSettings, load_settings
from pipeline_common.topics import TRANSCRIPTS_READY
from tests.support.broker import SecuredBroker
from tests.support.waiting import wait_for

pytestmark = pytest.mark.e2e  # about 15 s per variant once the session's secured broker runs

RECORDINGS = 3
SERVICES = ("ingest", "transcriber", "fetcher")


@contextlib.contextmanager
def secured_stack(broker: SecuredBroker, how: str) -> Iterator[stack.Profile]:
    """The simulator and the three services, each with the client settings kafka-local prints for its own user."""
    profile = stack.ephemeral_profile(f"secured-{how}-{uuid.uuid4().hex[:6]}")
    processes = stack.processes(profile)
    for process in processes:
        if process.name in SERVICES:
            process.env.update(broker.client_env(process.name, how))
    try:
        for process in processes:
            stack.start(profile, process)
        stack.wait_ready(profile, processes, timeout=240)
        yield profile
    finally:
        stack.down(profile, keep_kafka=True)  # the broker is the session's
        shutil.rmtree(profile.home, ignore_errors=True)


async def push_recordings_and_collect(profile: stack.Profile, downstream: KafkaSettings) -> set[str]:
    """Finish RECORDINGS recordings at the simulator; return the ids announced on transcripts.ready."""
    wanted = {str(uuid.uuid4()) for _ in range(RECORDINGS)}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{profile.sim_port}", timeout=10) as sim:
        for recording_id in wanted:
            (await sim.post("/admin/recordings", json={"id": recording_id})).raise_for_status()
    consumer = AIOKafkaConsumer(
        TRANSCRIPTS_READY.name, **downstream.aiokafka_connection_kwargs(), auto_offset_reset="earliest"
    )
    await consumer.start()
    seen: set[str] = set()
    try:

        async def all_announced() -> bool:
            batch = await consumer.getmany(timeout_ms=1000)
            seen.update(record.key.decode() for records in batch.values() for record in records if record.key)
            return wanted <= seen

        await wait_for(all_announced, timeout=180, message="every recording announced on transcripts.ready")
    finally:
        await consumer.stop()
    return wanted & seen


@pytest.mark.parametrize("how", ["scram", "mtls"])
def test_recordings_reach_transcripts_ready_over_a_secured_cluster(secured_broker: SecuredBroker, how: str) -> None:
    settings = {name: load_settings(KafkaSettings, **lower(secured_broker.client_env(name, how))) for name in SERVICES}
    expected_protocol = "SASL_SSL" if how == "scram" else "SSL"
    assert {s.kafka_security_protocol.value for s in settings.values()} == {expected_protocol}
    downstream = load_settings(KafkaSettings, **lower(secured_broker.client_env("admin", how)))
    with secured_stack(secured_broker, how) as profile:
        announced = asyncio.run(push_recordings_and_collect(profile, downstream))
        assert len(announced) == RECORDINGS
        logs = {name: (profile.logs / f"{name}.log").read_text(errors="replace") for name in SERVICES}
    for name, log in logs.items():
        assert "TopicAuthorizationFailed" not in log and "GroupAuthorizationFailed" not in log, name
        for secret_file in ("password", "user.key"):
            secret = (secured_broker.user_dir(name) / secret_file).read_text().strip()
            assert secret not in log, f"the {name} log contains its {secret_file}"


def lower(env: dict[str, str]) -> dict[str, str]:
    return {key.lower(): value for key, value in env.items()}
