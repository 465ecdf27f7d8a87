"""Deliberately broken manifests, continued: scaling rules, custom resources' fields, and the validator's API.

As in test_policies.py, every case starts from the real rendered overlay, breaks one thing, and expects exactly that
object to be named with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from deploy.validate import (
    OVERLAY_EXPECTATIONS,
    Expectations,
    ManifestError,
    Problem,
    find_problems,
    kind_of,
    name_of,
    validate_manifests,
)
from tests.deploy.helpers import INGEST, Fresh, find, ingest_container, rejected

pytestmark = pytest.mark.unit


# --------------------------------------------------------------------------------------------------- scaling rules


def test_a_lag_scaler_beyond_the_partition_count_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "ScaledObject", "fetcher")["spec"]["maxReplicaCount"] = 12
    rejected(objects, "ScaledObject recall-pipeline/fetcher", "exceeds the 6 partitions of recall.transcript.events")


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda m: m.update(allowIdleConsumers=False), "metadata allowIdleConsumers must be a string"),
        (lambda m: m.update(allowIdleConsumers="true"), "sets allowIdleConsumers"),
        (lambda m: m.pop("consumerGroup"), "has no metadata.consumerGroup"),
        (lambda m: m.update(topic="recall.bot.events"), "which 'fetcher' does not consume"),
        (lambda m: m.update(topic="transcripts.raedy"), "'transcripts.raedy', which is not in the topic registry"),
    ],
)
def test_a_broken_kafka_trigger_is_rejected(
    fresh: Fresh, change: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    objects = fresh("prod")
    change(find(objects, "ScaledObject", "fetcher")["spec"]["triggers"][0]["metadata"])
    rejected(objects, "ScaledObject recall-pipeline/fetcher", fragment)


def test_a_scaled_object_without_triggers_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "ScaledObject", "fetcher")["spec"]["triggers"] = []
    rejected(objects, "ScaledObject recall-pipeline/fetcher", "has no triggers")


def test_two_autoscalers_on_one_deployment_are_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "ScaledObject", "fetcher")["spec"]["scaleTargetRef"]["name"] = "transcriber"
    rejected(objects, "Deployment recall-pipeline/transcriber", "is scaled by more than one autoscaler")


def test_an_autoscaled_deployment_with_fixed_replicas_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "Deployment", "ingest")["spec"]["replicas"] = 3
    rejected(objects, INGEST, "sets spec.replicas although HorizontalPodAutoscaler recall-pipeline/ingest scales it")


def test_prod_refuses_a_single_replica(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "HorizontalPodAutoscaler", "ingest")["spec"]["minReplicas"] = 1
    rejected(objects, INGEST, "may run 1 replica(s); this environment needs at least 2")


def test_dev_refuses_more_than_one_replica(fresh: Fresh) -> None:
    objects = fresh("dev")
    find(objects, "ScaledObject", "transcriber")["spec"]["maxReplicaCount"] = 3
    rejected(objects, "Deployment recall-pipeline-dev/transcriber", "may run 3 replicas", overlay="dev")


def test_prod_refuses_the_simulator(fresh: Fresh) -> None:
    objects = fresh("prod")
    for obj in fresh("dev"):
        if "recall-sim" in name_of(obj) and kind_of(obj) != "ConfigMap":
            obj["metadata"]["namespace"] = "recall-pipeline"
            objects.append(obj)
    rejected(objects, "Deployment recall-pipeline/recall-sim", "must not be deployed in this environment")


def test_a_missing_service_is_rejected(fresh: Fresh) -> None:
    objects = [obj for obj in fresh("prod") if "fetcher" not in name_of(obj) or kind_of(obj) == "KafkaTopic"]
    rejected(objects, "Deployment fetcher", "is missing from the output")


# ------------------------------------------------------------------------------------------ custom resource fields


def test_a_kafka_without_topic_operator_is_rejected(fresh: Fresh) -> None:
    objects = fresh("dev")
    del find(objects, "Kafka", "recall-kafka")["spec"]["entityOperator"]
    rejected(objects, "Kafka recall-pipeline-dev/recall-kafka", "has no entityOperator.topicOperator", overlay="dev")


def test_a_kafka_without_listeners_is_rejected(fresh: Fresh) -> None:
    objects = fresh("dev")
    find(objects, "Kafka", "recall-kafka")["spec"]["kafka"]["listeners"] = []
    rejected(objects, "Kafka recall-pipeline-dev/recall-kafka", "has no spec.kafka.listeners", overlay="dev")


def test_a_kafka_node_pool_without_roles_or_limits_is_rejected(fresh: Fresh) -> None:
    objects = fresh("dev")
    spec = find(objects, "KafkaNodePool", "dual-role")["spec"]
    spec["roles"] = ["broker"]
    del spec["resources"]["limits"]
    pool = "KafkaNodePool recall-pipeline-dev/dual-role"
    rejected(objects, pool, "has no spec.resources.limits", overlay="dev")
    rejected(objects, "Kafka recall-pipeline-dev/recall-kafka", "controller and broker roles", overlay="dev")


def test_a_service_monitor_without_endpoints_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "ServiceMonitor", "ingest")["spec"]["endpoints"] = []
    rejected(objects, "ServiceMonitor recall-pipeline/ingest", "has no spec.endpoints")


def test_a_monitor_scraping_a_port_that_does_not_exist_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "ServiceMonitor", "fetcher")["spec"]["endpoints"][0]["port"] = "metrics"
    find(objects, "PodMonitor", "transcriber")["spec"]["podMetricsEndpoints"][0]["port"] = "metrics"
    rejected(objects, "ServiceMonitor recall-pipeline/fetcher", "endpoint port 'metrics' is not a port name")
    rejected(objects, "PodMonitor recall-pipeline/transcriber", "endpoint port 'metrics' is not a container port")


def test_an_unknown_custom_resource_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    objects.append({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "n"}})
    rejected(objects, "Widget n/w", "custom resource this validator does not know")


def test_an_object_declared_twice_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    objects.append(copy.deepcopy(find(objects, "Service", "fetcher")))
    rejected(objects, "Service recall-pipeline/fetcher", "is declared twice")


# ------------------------------------------------------------------------------------------------------------ api


def test_validate_manifests_raises_one_error_listing_every_problem(fresh: Fresh) -> None:
    objects = fresh("prod")
    del ingest_container(objects)["resources"]["limits"]
    find(objects, "ScaledObject", "transcriber")["spec"]["scaleTargetRef"]["name"] = "gone"
    with pytest.raises(ManifestError) as caught:
        validate_manifests(objects, OVERLAY_EXPECTATIONS["prod"])
    message = str(caught.value)
    assert "Deployment recall-pipeline/ingest: container 'ingest' has no resources.limits.cpu" in message
    assert "ScaledObject recall-pipeline/transcriber: scaleTargetRef names Deployment 'gone'" in message
    assert caught.value.problems == sorted(caught.value.problems)


def test_malformed_objects_are_reported_not_crashed_on() -> None:
    problems = find_problems(
        [
            {"kind": "ConfigMap", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}},
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": None},
        ],
        Expectations(),
    )
    assert Problem("ConfigMap a", "has no apiVersion") in problems
    assert Problem("ConfigMap ?", "has no metadata.name") in problems
    assert Problem("Deployment d", "has no pod template") in problems
