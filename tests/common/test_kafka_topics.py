from __future__ import annotations

import dataclasses

import pytest

from pipeline_common.kafka import TopicCreationError, ensure_topics
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import REGISTRY
from tests.support.kafka import KafkaTestClient

pytestmark = pytest.mark.integration


async def test_creates_missing_registry_topics_with_their_layout(kafka: KafkaTestClient, unique: str) -> None:
    # Registry specs renamed per test, so the test neither depends on nor disturbs other tests' topics.
    specs = [dataclasses.replace(spec, name=f"{unique}.{spec.name}") for spec in REGISTRY]
    settings = KafkaSettings(kafka_bootstrap_servers=[kafka.bootstrap_servers])

    created = await ensure_topics(settings, specs)
    assert created == sorted(spec.name for spec in specs)

    existing = await kafka.list_topics()
    assert {spec.name for spec in specs} <= existing
    for spec in specs[:2]:
        assert len(await kafka.end_offsets(spec.name)) == spec.partitions
        config = await kafka.describe_topic_configs(spec.name)
        assert config["retention.ms"] == str(spec.retention_ms)
        assert config["cleanup.policy"] == spec.cleanup_policy.value

    assert await ensure_topics(settings, specs) == []  # idempotent


async def test_an_impossible_topic_fails_loudly(kafka: KafkaTestClient, unique: str) -> None:
    settings = KafkaSettings(kafka_bootstrap_servers=[kafka.bootstrap_servers])
    with pytest.raises(TopicCreationError, match=unique):
        await ensure_topics(settings, [dataclasses.replace(REGISTRY[0], name=unique)], replication_factor=3)
