"""The KafkaTopic manifests are generated from the topic registry, and the checked-in files are what it generates."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from deploy import topics as module
from deploy.validate import Expectations, find_problems
from pipeline_common import topics
from pipeline_common.topics import REGISTRY

pytestmark = pytest.mark.unit
generator = module.GENERATOR


def test_checked_in_topics_are_what_the_registry_generates() -> None:
    stale = generator.stale_files()
    assert not stale, "deploy/topics/ drifted from libs/common's topic registry; run `make kube-topics`:\n" + "\n".join(
        stale
    )


def test_every_registry_topic_becomes_one_kafka_topic() -> None:
    files = generator.render_files()
    documents = [yaml.safe_load(text) for name, text in files.items() if name != "kustomization.yaml"]
    assert [doc["spec"]["topicName"] for doc in documents] == [spec.name for spec in REGISTRY]
    for spec, document in zip(REGISTRY, documents, strict=True):
        assert document["apiVersion"] == "kafka.strimzi.io/v1"
        assert document["kind"] == "KafkaTopic"
        assert document["metadata"]["labels"]["strimzi.io/cluster"] == module.CLUSTER_NAME
        assert document["spec"]["partitions"] == spec.partitions
        assert document["spec"]["replicas"] == module.BASE_REPLICAS
        assert document["spec"]["config"] == {**spec.config(), "min.insync.replicas": "1"}
    kustomization = yaml.safe_load(files["kustomization.yaml"])
    assert kustomization["resources"] == [name for name in files if name != "kustomization.yaml"]


def test_generated_files_say_they_are_generated() -> None:
    for text in generator.render_files().values():
        assert text.startswith(module.HEADER)


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("recall.recording.events", "recall-recording-events"),
        ("transcriber.dlq", "transcriber-dlq"),
        ("Some_Topic.V2", "some-topic-v2"),
    ],
)
def test_kubernetes_names_are_dns_labels(topic: str, expected: str) -> None:
    assert module.resource_name(topic) == expected


def test_a_registry_change_makes_the_checked_in_files_stale() -> None:
    # A topic that grows partitions in the registry but not in deploy/topics/ is caught, file by file.
    changed = tuple(
        dataclasses.replace(spec, partitions=12) if spec.name == "transcripts.ready" else spec for spec in REGISTRY
    )
    assert generator.stale_files(module.TOPICS_DIR, changed) == ["transcripts-ready.yaml: differs from the registry"]


def test_a_new_registry_topic_is_missing_and_a_removed_one_left_over(tmp_path: Path) -> None:
    generator.write_files(tmp_path)
    grown = (*REGISTRY, topics.dlq_topic("ingest"))
    assert generator.stale_files(tmp_path, grown) == [
        "ingest-dlq.yaml: missing",
        "kustomization.yaml: differs from the registry",
    ]
    generator.write_files(tmp_path, grown)
    assert generator.stale_files(tmp_path, REGISTRY) == [
        "kustomization.yaml: differs from the registry",
        "ingest-dlq.yaml: no registry topic generates it",
    ]


def test_write_then_check_round_trips_and_removes_leftovers(tmp_path: Path) -> None:
    (tmp_path / "old-topic.yaml").write_text("kind: KafkaTopic\n")
    changed = generator.write_files(tmp_path)
    assert "old-topic.yaml" in changed
    assert not (tmp_path / "old-topic.yaml").exists()
    assert generator.stale_files(tmp_path) == []
    assert generator.write_files(tmp_path) == []


def test_cli_check_fails_on_stale_files_and_passes_after_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert generator.main(["--check", "--dir", str(tmp_path)]) == 1
    assert "run `make kube-topics`" in capsys.readouterr().err
    assert generator.main(["--dir", str(tmp_path)]) == 0
    assert generator.main(["--check", "--dir", str(tmp_path)]) == 0


def test_validator_rejects_generated_topics_from_a_different_registry() -> None:
    # The same rule from the other side: manifests generated before a registry change fail validation.
    objects = [yaml.safe_load(text) for name, text in generator.render_files().items() if name != "kustomization.yaml"]
    changed = tuple(dataclasses.replace(spec, retention_ms=spec.retention_ms * 2) for spec in REGISTRY)
    problems = find_problems(objects, Expectations(), registry=changed)
    assert problems
    assert {problem.object for problem in problems} == {
        f"KafkaTopic {module.resource_name(spec.name)}" for spec in REGISTRY
    }
    assert all("retention.ms" in problem.message for problem in problems)
