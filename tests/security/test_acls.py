"""Least privilege: the ACLs derived from the topic registry, and the secured broker enforcing exactly those."""

from __future__ import annotations

import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import GroupAuthorizationFailedError, TopicAuthorizationFailedError

from pipeline_common.acls import (
    LAG_SCALER,
    RECONCILER,
    SERVICES,
    USERS,
    Acl,
    acl_lines,
    faust_leader_topic,
    lag_inputs,
    main,
    service_acls,
)
from pipeline_common.settings import KafkaSettings, load_settings
from pipeline_common.topics import REGISTRY, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY, TopicSpec
from tests.support.broker import SecuredBroker


def topics_with(acls: list[Acl], operation: str) -> set[str]:
    return {acl.name for acl in acls if acl.resource_type == "topic" and acl.operation == operation}


@pytest.mark.unit
def test_ingest_may_only_write_the_recall_event_topics() -> None:
    acls = service_acls("ingest")
    assert topics_with(acls, "Write") == {
        "recall.recording.events",
        "recall.transcript.events",
        "recall.bot.events",
        "recall.other.events",
    }
    assert topics_with(acls, "Read") == set()
    assert {acl.resource_type for acl in acls} == {"topic"}  # no group, no cluster right: it cannot create topics


@pytest.mark.unit
def test_each_service_gets_what_the_registry_says_it_produces_and_consumes() -> None:
    for service in SERVICES:
        acls = service_acls(service)
        leader = {faust_leader_topic(service)} if service != "ingest" else set()
        produced = {spec.name for spec in REGISTRY if service in spec.produced_by}
        consumed = {spec.name for spec in REGISTRY if service in spec.consumed_by}
        assert topics_with(acls, "Write") == produced | leader, service
        reads_back = {TRANSCRIPTS_READY.name} if service == "fetcher" else set()
        assert topics_with(acls, "Read") == consumed | leader | reads_back, service
        assert all(acl.pattern_type == "literal" for acl in acls), "no prefix or wildcard ACLs"


@pytest.mark.unit
def test_a_new_registry_topic_changes_the_acls() -> None:
    extra = TopicSpec("recall.new.events", 3, 1, REGISTRY[0].cleanup_policy, "k", "v", ("ingest",), ("fetcher",), "d")
    assert "recall.new.events" in topics_with(service_acls("ingest", (*REGISTRY, extra)), "Write")
    assert "recall.new.events" in topics_with(service_acls("fetcher", (*REGISTRY, extra)), "Read")


@pytest.mark.unit
def test_the_reconciler_writes_what_it_synthesises_and_reads_without_a_group() -> None:
    acls = service_acls(RECONCILER)
    assert topics_with(acls, "Write") == {
        "recall.recording.events",
        "recall.transcript.events",
        "recall.reconciler.state",
    }
    assert topics_with(acls, "Read") == {
        "recall.recording.events",
        "recall.transcript.events",
        "transcripts.ready",
        "transcripts.failed",
        "recall.reconciler.state",
    }
    assert {acl.resource_type for acl in acls} == {"topic"}  # no consumer group: it reads by assignment
    assert RECONCILER in {p for spec in REGISTRY for p in spec.produced_by}  # the registry says so, not a side list


@pytest.mark.unit
def test_the_lag_scaler_may_only_describe_the_workers_groups_and_inputs() -> None:
    acls = service_acls(LAG_SCALER)
    assert {acl.operation for acl in acls} == {"Describe"}
    assert {acl.name for acl in acls if acl.resource_type == "group"} == {"transcriber", "fetcher"}
    assert lag_inputs() == {
        "transcriber": ("recall.recording.events", "recall.transcript.events"),
        "fetcher": ("recall.transcript.events",),
    }


@pytest.mark.unit
def test_the_users_listing_is_what_kafka_local_creates(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--users"]) == 0
    assert capsys.readouterr().out.split() == list(USERS)
    assert {line.split()[0] for line in acl_lines()} == {f"User:{user}" for user in USERS}


@pytest.mark.integration
def test_the_broker_holds_exactly_the_derived_acls(secured_broker: SecuredBroker) -> None:
    applied = (secured_broker.state_dir / "secure" / "acls-applied.txt").read_text().splitlines()
    assert sorted(f"{line} ALLOW *" for line in acl_lines()) == sorted(applied)


def client(broker: SecuredBroker, user: str, how: str = "scram") -> KafkaSettings:
    env = broker.client_env(user, how)
    return load_settings(KafkaSettings, **{key.lower(): value for key, value in env.items()})


@pytest.mark.integration
@pytest.mark.parametrize("how", ["scram", "mtls"])
async def test_ingest_cannot_write_transcripts_ready(secured_broker: SecuredBroker, how: str) -> None:
    producer = AIOKafkaProducer(**client(secured_broker, "ingest", how).aiokafka_connection_kwargs(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait("recall.recording.events", b"{}", key=b"acl-test")  # its own topic: allowed
        with pytest.raises(TopicAuthorizationFailedError):
            await producer.send_and_wait(TRANSCRIPTS_READY.name, b"{}", key=b"forged")
    finally:
        await producer.stop()


@pytest.mark.integration
async def test_the_fetcher_cannot_announce_a_failure_nor_the_transcriber_a_transcript(
    secured_broker: SecuredBroker,
) -> None:
    for user, forbidden in (("fetcher", TRANSCRIPTS_FAILED.name), ("transcriber", TRANSCRIPTS_READY.name)):
        producer = AIOKafkaProducer(**client(secured_broker, user).aiokafka_connection_kwargs(), acks="all")
        await producer.start()
        try:
            with pytest.raises(TopicAuthorizationFailedError):
                await producer.send_and_wait(forbidden, b"{}", key=b"forged")
        finally:
            await producer.stop()


@pytest.mark.integration
async def test_a_service_cannot_join_another_services_consumer_group(secured_broker: SecuredBroker) -> None:
    consumer = AIOKafkaConsumer(
        "recall.transcript.events",
        **client(secured_broker, "fetcher").aiokafka_connection_kwargs(),
        group_id="transcriber",
    )
    try:
        with pytest.raises(GroupAuthorizationFailedError):
            await consumer.start()  # joining the group is the first thing start() does with a subscription
    finally:
        await consumer.stop()


@pytest.mark.integration
async def test_no_service_may_create_topics(secured_broker: SecuredBroker) -> None:
    admin = AIOKafkaAdminClient(**client(secured_broker, "ingest").aiokafka_connection_kwargs())
    await admin.start()
    try:
        response = await admin.create_topics([NewTopic(f"rogue-{uuid.uuid4().hex[:6]}", 1, 1)])
        assert response.topic_errors[0][1] == 29  # TOPIC_AUTHORIZATION_FAILED
    finally:
        await admin.close()


@pytest.mark.integration
async def test_the_fetcher_reads_back_transcripts_ready_without_a_group(secured_broker: SecuredBroker) -> None:
    """What fetcher/announce.py does after a crash: end offsets and a scan of its own topic."""
    consumer = AIOKafkaConsumer(**client(secured_broker, "fetcher").aiokafka_connection_kwargs())
    await consumer.start()
    try:
        tp = TopicPartition(TRANSCRIPTS_READY.name, 0)
        consumer.assign([tp])
        assert (await consumer.end_offsets([tp]))[tp] >= 0
    finally:
        await consumer.stop()
