"""Topics: the ``KafkaTopic`` resources are exactly the topic registry."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from deploy.validate.model import ENVIRONMENT_TOPIC_CONFIG, STRIMZI_CLUSTER_LABEL, Expectations, Obj, Problem
from deploy.validate.objects import Index, _dict, labels_of, ref
from deploy.validate.scaling import _topics_by_name
from pipeline_common.topics import TopicSpec


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def check_topics(index: Index, registry: Iterable[TopicSpec], expectations: Expectations) -> list[Problem]:
    problems: list[Problem] = []
    topics = _topics_by_name(registry)
    seen: dict[str, Obj] = {}
    for topic in index.kind("KafkaTopic"):
        where, spec = ref(topic), _dict(topic.get("spec"))
        if not labels_of(topic).get(STRIMZI_CLUSTER_LABEL):
            problems.append(Problem(where, f"has no {STRIMZI_CLUSTER_LABEL} label: no Topic Operator will manage it"))
        topic_name = spec.get("topicName")
        if not topic_name:
            problems.append(
                Problem(where, "has no spec.topicName: a kustomize name prefix would rename the real Kafka topic")
            )
            continue
        if topic_name in seen:
            problems.append(Problem(where, f"declares topic {topic_name!r} again (also {ref(seen[topic_name])})"))
            continue
        seen[topic_name] = topic
        registered = topics.get(topic_name)
        if registered is None:
            problems.append(Problem(where, f"topic {topic_name!r} is not in the topic registry (libs/common)"))
            continue
        if spec.get("partitions") != registered.partitions:
            problems.append(
                Problem(
                    where,
                    f"has {spec.get('partitions')} partitions; the topic registry says {registered.partitions} "
                    "(run `make kube-topics`)",
                )
            )
        config = {str(key): str(value) for key, value in _dict(spec.get("config")).items()}
        for key, value in registered.config().items():
            if config.get(key) != value:
                problems.append(
                    Problem(where, f"config {key} is {config.get(key)!r}; the topic registry says {value!r}")
                )
        for key in sorted(set(config) - set(registered.config()) - ENVIRONMENT_TOPIC_CONFIG):
            problems.append(Problem(where, f"config {key} is not in the topic registry"))
        replicas, min_insync = _int(spec.get("replicas")), _int(config.get("min.insync.replicas"))
        if replicas is None or replicas < 1:
            problems.append(Problem(where, "has no spec.replicas"))
        if expectations.topic_replicas is not None and replicas != expectations.topic_replicas:
            problems.append(
                Problem(where, f"has {replicas} replicas; this environment needs {expectations.topic_replicas}")
            )
        wanted_isr = expectations.topic_min_insync_replicas
        if wanted_isr is not None and min_insync != wanted_isr:
            problems.append(
                Problem(where, f"has min.insync.replicas {min_insync}; this environment needs {wanted_isr}")
            )
        if replicas and min_insync and (min_insync > replicas or (replicas > 1 and min_insync == replicas)):
            problems.append(
                Problem(
                    where,
                    f"min.insync.replicas {min_insync} with {replicas} replicas: acks=all writes stop when one "
                    "broker is down",
                )
            )
    declared = bool(index.kind("KafkaTopic"))
    for name in topics:
        if declared and name not in seen:
            problems.append(Problem(f"KafkaTopic {name}", "registry topic has no KafkaTopic (run `make kube-topics`)"))
    return problems
