"""Deliberately broken manifests: the validator rejects each one with a message naming the broken object.

Every case starts from the real rendered overlay (which passes), breaks one thing, and expects exactly that object
to be named with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from deploy.validate import (
    OVERLAY_EXPECTATIONS,
    Problem,
    name_of,
    validate_manifests,
)
from tests.deploy.helpers import INGEST, Fresh, find, find_prefixed, ingest_container, rejected, remove

pytestmark = pytest.mark.unit


# ------------------------------------------------------------------------------------------- the examples


def test_a_missing_limit_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    del ingest_container(objects)["resources"]["limits"]["memory"]
    problems = rejected(objects, INGEST, "container 'ingest' has no resources.limits.memory")
    assert len(problems) == 1


def test_a_wrong_apiversion_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "Deployment", "ingest")["apiVersion"] = "extensions/v1beta1"
    rejected(objects, INGEST, "extensions/v1beta1 Deployment is not served by Kubernetes 1.30")


@pytest.mark.parametrize(
    ("kind", "name", "api_version"),
    [
        ("HorizontalPodAutoscaler", "ingest", "autoscaling/v2beta2"),  # removed in 1.26
        ("PodDisruptionBudget", "fetcher", "policy/v1beta1"),  # removed in 1.25
        ("Ingress", "ingest", "networking.k8s.io/v1beta1"),  # removed in 1.22
    ],
)
def test_removed_core_apiversions_are_rejected(fresh: Fresh, kind: str, name: str, api_version: str) -> None:
    objects = fresh("prod")
    find(objects, kind, name)["apiVersion"] = api_version
    rejected(objects, f"{kind} recall-pipeline/{name}", "unknown kind or removed apiVersion")


def test_an_unknown_core_kind_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "Deployment", "fetcher")["kind"] = "Deploymnet"
    rejected(objects, "Deploymnet recall-pipeline/fetcher", "apps/v1 Deploymnet is not served")


@pytest.mark.parametrize(
    ("kind", "name", "api_version", "fragment"),
    [
        ("KafkaTopic", "transcripts-ready", "kafka.strimzi.io/v1beta2", "use kafka.strimzi.io/v1"),
        ("ScaledObject", "fetcher", "keda.sh/v1", "use keda.sh/v1alpha1"),
        ("ServiceMonitor", "ingest", "monitoring.coreos.com/v1alpha1", "use monitoring.coreos.com/v1"),
    ],
)
def test_custom_resources_with_an_unserved_apiversion_are_rejected(
    fresh: Fresh, kind: str, name: str, api_version: str, fragment: str
) -> None:
    objects = fresh("prod")
    obj = find(objects, kind, name)
    obj["apiVersion"] = api_version
    namespace = obj["metadata"]["namespace"]
    rejected(objects, f"{kind} {namespace}/{name}", fragment)


def test_a_secret_with_data_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "recall-credentials", "namespace": "recall-pipeline"},
            "type": "Opaque",
            "data": {"RECALL_API_KEY": "c2VjcmV0"},
        }
    )
    rejected(objects, "Secret recall-pipeline/recall-credentials", "carries data (RECALL_API_KEY)")


def test_a_secret_with_string_data_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    objects.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store", "namespace": "recall-pipeline"},
            "stringData": {"AWS_SECRET_ACCESS_KEY": "x"},
        }
    )
    rejected(objects, "Secret recall-pipeline/store", "carries data (AWS_SECRET_ACCESS_KEY)")


def test_an_empty_secret_is_accepted(fresh: Fresh) -> None:
    objects = fresh("prod")
    objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "recall-pipeline"}})
    validate_manifests(objects, OVERLAY_EXPECTATIONS["prod"])


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda spec: spec.update(partitions=12), "has 12 partitions; the topic registry says 6"),
        (lambda spec: spec["config"].update({"retention.ms": "1000"}), "config retention.ms is '1000'"),
        (lambda spec: spec["config"].update({"cleanup.policy": "compact"}), "config cleanup.policy is 'compact'"),
        (lambda spec: spec["config"].update({"segment.bytes": "1024"}), "config segment.bytes is not in the topic"),
        (lambda spec: spec.update(topicName="transcripts.readyy"), "'transcripts.readyy' is not in the topic registry"),
        (lambda spec: spec.pop("topicName"), "has no spec.topicName"),
        (lambda spec: spec.update(replicas=1), "has 1 replicas; this environment needs 3"),
        (lambda spec: spec["config"].update({"min.insync.replicas": "3"}), "acks=all writes stop"),
    ],
)
def test_a_topic_drifting_from_the_registry_is_rejected(
    fresh: Fresh, change: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    objects = fresh("prod")
    change(find(objects, "KafkaTopic", "transcripts-ready")["spec"])
    rejected(objects, "KafkaTopic kafka/transcripts-ready", fragment)


def test_a_registry_topic_without_a_kafka_topic_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    remove(objects, "KafkaTopic", "fetcher-dlq")
    rejected(objects, "KafkaTopic fetcher.dlq", "registry topic has no KafkaTopic")


def test_a_topic_declared_twice_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    twin = copy.deepcopy(find(objects, "KafkaTopic", "transcripts-ready"))
    twin["metadata"]["name"] = "transcripts-ready-2"
    objects.append(twin)
    rejected(objects, "KafkaTopic kafka/transcripts-ready-2", "declares topic 'transcripts.ready' again")


def test_a_topic_no_operator_manages_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    del find(objects, "KafkaTopic", "transcripts-failed")["metadata"]["labels"]["strimzi.io/cluster"]
    rejected(objects, "KafkaTopic kafka/transcripts-failed", "no Topic Operator will manage it")


@pytest.mark.parametrize("kind", ["ScaledObject", "HorizontalPodAutoscaler"])
def test_a_scale_target_that_does_not_exist_is_rejected(fresh: Fresh, kind: str) -> None:
    objects = fresh("prod")
    name = "ingest" if kind == "HorizontalPodAutoscaler" else "transcriber"
    find(objects, kind, name)["spec"]["scaleTargetRef"]["name"] = "transcriber-v2"
    rejected(objects, f"{kind} recall-pipeline/{name}", "names Deployment 'transcriber-v2', which is not in the")


def test_a_scale_target_removed_from_the_output_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    for kind in ("Deployment", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "Service", "ServiceMonitor"):
        remove(objects, kind, "fetcher")
    rejected(objects, "ScaledObject recall-pipeline/fetcher", "names Deployment 'fetcher', which is not in the")


# -------------------------------------------------------------------------------------------------- workload rules


@pytest.mark.parametrize(
    ("break_it", "fragment"),
    [
        (lambda c: c["resources"].pop("requests"), "has no resources.requests.cpu"),
        (lambda c: c["resources"]["limits"].pop("cpu"), "has no resources.limits.cpu"),
        (lambda c: c.pop("livenessProbe"), "has no livenessProbe"),
        (lambda c: c.pop("readinessProbe"), "has no readinessProbe"),
        (lambda c: c["livenessProbe"]["httpGet"].update(path="/readyz"), "livenessProbe checks the readiness endpoint"),
        (lambda c: c["readinessProbe"]["httpGet"].update(port="admin"), "uses port 'admin'"),
        (lambda c: c["securityContext"].update(runAsNonRoot=False), "may run as root"),
        (lambda c: c["securityContext"].update(readOnlyRootFilesystem=False), "has a writable root filesystem"),
        (lambda c: c["securityContext"].update(allowPrivilegeEscalation=True), "allows privilege escalation"),
        (lambda c: c["securityContext"].update(privileged=True), "is privileged"),
        (lambda c: c["securityContext"].update(capabilities={"drop": ["NET_RAW"]}), "keeps its Linux capabilities"),
        (lambda c: c["securityContext"].update(capabilities={"drop": ["ALL"], "add": ["NET_ADMIN"]}), "adds capab"),
        (lambda c: c.update(volumeMounts=[]), "no writable volume at /tmp"),
        (lambda c: c.update(image="registry.example.com/recall-pipeline/ingest:latest"), "moving tag 'latest'"),
        (lambda c: c.update(image="registry.example.com/recall-pipeline/ingest"), "has no tag"),
        (lambda c: c["env"].append({"name": "RECALL_API_KEY", "value": "abc"}), "sets RECALL_API_KEY to a literal"),
    ],
)
def test_a_broken_container_is_rejected(
    fresh: Fresh, break_it: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    objects = fresh("prod")
    break_it(ingest_container(objects))
    rejected(objects, INGEST, fragment)


def test_an_unknown_field_fails_the_strict_schema(fresh: Fresh) -> None:
    objects = fresh("prod")
    container = ingest_container(objects)
    container["resource"] = container.pop("resources")  # a typo kubectl would reject at apply time
    rejected(objects, INGEST, "'resource' was unexpected")


@pytest.mark.parametrize(
    ("break_it", "fragment"),
    [
        (lambda pod: pod.pop("seccompProfile") and None, "has no seccomp profile"),
        (lambda pod: pod.update(runAsUser=0, runAsNonRoot=None), "runs as UID 0"),
    ],
)
def test_a_broken_pod_security_context_is_rejected(
    fresh: Fresh, break_it: Callable[[dict[str, Any]], object], fragment: str
) -> None:
    objects = fresh("prod")
    pod = find(objects, "Deployment", "ingest")["spec"]["template"]["spec"]
    break_it(pod["securityContext"])
    if fragment == "runs as UID 0":
        del pod["securityContext"]["runAsNonRoot"]
        del pod["containers"][0]["securityContext"]["runAsNonRoot"]
    rejected(objects, INGEST, fragment)


@pytest.mark.parametrize(
    ("break_it", "fragment"),
    [
        (lambda pod: pod.update(automountServiceAccountToken=True), "mounts a ServiceAccount token"),
        (lambda pod: pod.update(serviceAccountName="default"), "default ServiceAccount"),
        (lambda pod: pod.update(serviceAccountName="ingest-sa"), "uses ServiceAccount 'ingest-sa', which is not"),
        (lambda pod: pod.pop("topologySpreadConstraints"), "has no topologySpreadConstraints"),
        (lambda pod: pod.update(hostNetwork=True), "shares the node's namespaces (hostNetwork)"),
    ],
)
def test_a_broken_pod_is_rejected(fresh: Fresh, break_it: Callable[[dict[str, Any]], object], fragment: str) -> None:
    objects = fresh("prod")
    break_it(find(objects, "Deployment", "ingest")["spec"]["template"]["spec"])
    rejected(objects, INGEST, fragment)


def test_a_deployment_without_a_pdb_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    remove(objects, "PodDisruptionBudget", "fetcher")
    rejected(objects, "Deployment recall-pipeline/fetcher", "no PodDisruptionBudget selects its pods")


def test_a_pdb_that_blocks_node_drains_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    spec = find(objects, "PodDisruptionBudget", "ingest")["spec"]
    del spec["maxUnavailable"]
    spec["minAvailable"] = 2
    rejected(objects, "PodDisruptionBudget recall-pipeline/ingest", "blocks every voluntary eviction")


def test_a_pdb_selecting_nothing_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "PodDisruptionBudget", "ingest")["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "x"
    problems = rejected(objects, "PodDisruptionBudget recall-pipeline/ingest", "selects no pods")
    assert Problem(INGEST, "no PodDisruptionBudget selects its pods") in problems


def test_a_deployment_without_a_network_policy_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    remove(objects, "NetworkPolicy", "transcriber")
    rejected(objects, "Deployment recall-pipeline/transcriber", "no NetworkPolicy restricts its egress and ingress")


def test_a_network_policy_without_egress_rules_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    spec = find(objects, "NetworkPolicy", "transcriber")["spec"]
    spec["policyTypes"] = ["Ingress"]
    del spec["egress"]
    rejected(objects, "Deployment recall-pipeline/transcriber", "no NetworkPolicy restricts its egress traffic")


def test_a_service_pointing_at_a_missing_port_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    find(objects, "Service", "ingest")["spec"]["ports"][0]["targetPort"] = "https"
    rejected(objects, "Service recall-pipeline/ingest", "targetPort 'https' is not a port of the selected pods")


def test_a_config_map_holding_a_secret_is_rejected(fresh: Fresh) -> None:
    objects = fresh("prod")
    config = find_prefixed(objects, "ConfigMap", "pipeline-config")
    config["data"]["RECALL_WEBHOOK_SECRET"] = "whsec_abc"
    rejected(objects, f"ConfigMap recall-pipeline/{name_of(config)}", "holds RECALL_WEBHOOK_SECRET")
