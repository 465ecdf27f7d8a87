from __future__ import annotations

import pytest

from pipeline_common import topics
from pipeline_common.topics import REGISTRY, CleanupPolicy, by_name, dlq_topic

pytestmark = pytest.mark.unit

DESIGN_TOPICS = {
    "recall.recording.events",
    "recall.transcript.events",
    "recall.bot.events",
    "recall.other.events",
    "transcripts.ready",
    "transcripts.failed",
    "transcriber.dlq",
    "fetcher.dlq",
    "transcriber.retries",
    "transcriber-recordings-changelog",
    "fetcher.retries",
    "fetcher-recordings-changelog",
    "recall.reconciler.state",
}


def test_registry_holds_every_topic_of_the_design_once() -> None:
    names = [spec.name for spec in REGISTRY]
    assert sorted(names) == sorted(DESIGN_TOPICS)
    assert len(names) == len(set(names))


@pytest.mark.parametrize("spec", REGISTRY, ids=lambda spec: spec.name)
def test_every_topic_is_fully_specified(spec: topics.TopicSpec) -> None:
    assert spec.partitions >= 1
    assert spec.retention_ms >= topics.DAY_MS
    assert spec.cleanup_policy in CleanupPolicy
    assert spec.key and spec.value and spec.description and spec.produced_by
    config = spec.config()
    assert config["cleanup.policy"] == spec.cleanup_policy.value
    assert config["retention.ms"] == str(spec.retention_ms)
    assert all(isinstance(value, str) for value in config.values())


def test_recall_topics_keyed_by_recording_share_a_partition_count() -> None:
    # The transcriber joins recording and transcript events by recording id in one Table: co-partitioning required.
    assert topics.RECORDING_EVENTS.partitions == topics.TRANSCRIPT_EVENTS.partitions


def test_dlq_topic_is_named_for_its_service() -> None:
    assert dlq_topic("fetcher").name == "fetcher.dlq"
    assert by_name("fetcher.dlq") == dlq_topic("fetcher")


def test_by_name_rejects_an_unknown_topic() -> None:
    with pytest.raises(KeyError, match="no topic named 'nope'"):
        by_name("nope")
