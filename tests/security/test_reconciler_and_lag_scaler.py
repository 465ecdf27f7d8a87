"""The reconciler and KEDA's lag scaler on the secured broker, each with exactly the ACLs pipeline_common.acls derives
(the ones their KafkaUsers get in production): the reconciler does a whole run (reads the pipeline's topics without a
group, publishes what was lost, stores its watermark) and can forge nothing else; the lag scaler measures a group's
lag and can read no record."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from pipeline_cli.kafka import KafkaReader
from pipeline_common.acls import LAG_SCALER, RECONCILER, lag_inputs
from pipeline_common.settings import KafkaSettings, load_settings
from pipeline_common.topics import RECONCILER_STATE, RECORDING_EVENTS, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY
from tests.support.broker import SecuredBroker
from tests.support.recall_sim import RunningSim
from tests.support.recall_sim import recall_sim as recall_sim

pytestmark = pytest.mark.integration


def client(broker: SecuredBroker, user: str) -> KafkaSettings:
    env = broker.client_env(user, "scram")
    return load_settings(KafkaSettings, **{key.lower(): value for key, value in env.items()})


def reconcile(broker: SecuredBroker, sim: RunningSim, *args: str) -> subprocess.CompletedProcess[str]:
    """``recall-pipeline reconcile`` as the CronJob runs it, as the Kafka user `reconciler`."""
    env = {
        **broker.client_env(RECONCILER, "scram"),
        "RECALL_API_KEY": sim.api_key,
        "RECALL_API_BASE_URL": sim.base_url,
        "PATH": "/usr/bin:/bin",
    }
    cli = str(Path(sys.executable).with_name("recall-pipeline"))
    return subprocess.run([cli, "reconcile", *args], env=env, capture_output=True, text=True, timeout=120)


async def recording_events(settings: KafkaSettings, key: str) -> list[bytes | None]:
    async with KafkaReader(settings) as reader:
        return [r.value async for r in reader.snapshot([RECORDING_EVENTS.name]) if r.key_text == key]


async def test_the_reconciler_does_a_whole_run_with_exactly_its_acls(
    secured_broker: SecuredBroker, recall_sim: RunningSim
) -> None:
    admin = client(secured_broker, "admin")
    team = uuid.uuid4().hex[:8]
    missing = await recall_sim.admin.create_recording(metadata={"team": team})
    known = await recall_sim.admin.create_recording(metadata={"team": team})
    producer = AIOKafkaProducer(**admin.aiokafka_connection_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(TRANSCRIPTS_READY.name, b"{}", key=known["id"].encode())
    finally:
        await producer.stop()
    args = ("--grace", "0s", "--metadata", f"team={team}", "--json")

    dry = await asyncio.to_thread(reconcile, secured_broker, recall_sim, "--dry-run", *args)
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout.strip().splitlines()[-1])["already_known"] == 1  # it read transcripts.ready

    run = await asyncio.to_thread(reconcile, secured_broker, recall_sim, *args)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert [a["recording_id"] for a in result["actions"]] == [missing["id"]]
    assert result["watermark_after"] != "none"  # written to recall.reconciler.state
    assert len(await recording_events(admin, missing["id"])) == 1
    password = (secured_broker.user_dir(RECONCILER) / "password").read_text()
    assert password not in run.stdout + run.stderr

    again = await asyncio.to_thread(reconcile, secured_broker, recall_sim, *args)
    assert again.returncode == 0, again.stderr
    second = json.loads(again.stdout.strip().splitlines()[-1])
    assert second["watermark_before"] == result["watermark_after"]  # it read its watermark back
    assert second["published"] == 0


async def test_the_reconciler_cannot_announce_a_transcript_nor_a_failure(secured_broker: SecuredBroker) -> None:
    producer = AIOKafkaProducer(**client(secured_broker, RECONCILER).aiokafka_connection_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(RECONCILER_STATE.name, b"{}", key=b"acl-test")  # its own topic: allowed
        for forbidden in (TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name):
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(forbidden, b"{}", key=b"forged")
    finally:
        await producer.stop()


async def test_the_reconciler_reads_without_a_group_and_may_join_none(secured_broker: SecuredBroker) -> None:
    consumer = AIOKafkaConsumer(
        RECORDING_EVENTS.name, **client(secured_broker, RECONCILER).aiokafka_connection_kwargs(), group_id="transcriber"
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.start()
    finally:
        await consumer.stop()


async def test_the_lag_scaler_measures_lag_and_reads_no_record(secured_broker: SecuredBroker) -> None:
    topic = RECORDING_EVENTS.name
    assert topic in lag_inputs()["transcriber"]
    admin = client(secured_broker, "admin")
    producer = AIOKafkaProducer(**admin.aiokafka_connection_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"{}", key=b"lag", partition=0)
    finally:
        await producer.stop()
    # The worker's group commits an offset (as the admin: the services are not what this test is about).
    committer = AIOKafkaConsumer(**admin.aiokafka_connection_kwargs(), group_id="transcriber", enable_auto_commit=False)
    await committer.start()
    try:
        committer.assign([TopicPartition(topic, 0)])
        await committer.commit({TopicPartition(topic, 0): 0})
    finally:
        await committer.stop()

    scaler = client(secured_broker, LAG_SCALER)
    kafka_admin = AIOKafkaAdminClient(**scaler.aiokafka_connection_kwargs())
    await kafka_admin.start()
    try:
        committed = await kafka_admin.list_consumer_group_offsets("transcriber")  # OffsetFetch: Describe on the group
        assert committed[TopicPartition(topic, 0)].offset == 0, committed
        with pytest.raises(GroupAuthorizationFailedError):
            await kafka_admin.list_consumer_group_offsets("someone-else")
    finally:
        await kafka_admin.close()
    consumer = AIOKafkaConsumer(**scaler.aiokafka_connection_kwargs())
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        assert (await consumer.end_offsets([tp]))[tp] >= 1  # ListOffsets: Describe on the topic
        consumer.seek(tp, 0)
        with pytest.raises(TopicAuthorizationFailedError):
            await consumer.getone()  # Fetch needs Read: the scaler sees no record
    finally:
        await consumer.stop()
