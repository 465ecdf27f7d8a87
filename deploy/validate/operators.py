"""The Strimzi resources (cluster, node pools, users) and the Prometheus Operator monitors."""

from __future__ import annotations

from typing import Any

from deploy.validate.model import STRIMZI_CLUSTER_LABEL, Obj, Problem
from deploy.validate.objects import (
    Index,
    _dict,
    _list,
    container_ports,
    labels_of,
    name_of,
    namespace_of,
    pod_labels,
    ref,
    selector_matches,
)


def check_strimzi(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    clusters = index.kind("Kafka")
    pools = index.kind("KafkaNodePool")
    for kafka in clusters:
        where, spec = ref(kafka), _dict(kafka.get("spec"))
        if "zookeeper" in spec:
            problems.append(Problem(where, "configures ZooKeeper: Strimzi runs Kafka in KRaft mode only"))
        listeners = _list(_dict(spec.get("kafka")).get("listeners"))
        if not listeners:
            problems.append(Problem(where, "has no spec.kafka.listeners"))
        for listener in listeners:
            listener = _dict(listener)
            for key in ("name", "port", "type", "tls"):
                if key not in listener:
                    problems.append(Problem(where, f"listener {listener.get('name', '?')!r} has no {key}"))
        if not isinstance(_dict(spec.get("entityOperator")).get("topicOperator"), dict):
            problems.append(Problem(where, "has no entityOperator.topicOperator: its KafkaTopics would not be created"))
        own = [
            p
            for p in pools
            if namespace_of(p) == namespace_of(kafka) and labels_of(p).get(STRIMZI_CLUSTER_LABEL) == name_of(kafka)
        ]
        roles = {str(role) for pool in own for role in _list(_dict(pool.get("spec")).get("roles"))}
        if not {"controller", "broker"} <= roles:
            problems.append(Problem(where, "has no KafkaNodePool with the controller and broker roles (KRaft)"))
    for pool in pools:
        where, spec = ref(pool), _dict(pool.get("spec"))
        cluster = labels_of(pool).get(STRIMZI_CLUSTER_LABEL)
        if not cluster:
            problems.append(Problem(where, f"has no {STRIMZI_CLUSTER_LABEL} label"))
        elif not any(name_of(k) == cluster and namespace_of(k) == namespace_of(pool) for k in clusters):
            problems.append(Problem(where, f"belongs to Kafka '{cluster}', which is not in the output"))
        if not isinstance(spec.get("replicas"), int) or spec["replicas"] < 1:
            problems.append(Problem(where, "has no spec.replicas"))
        pool_roles = _list(spec.get("roles"))
        if not pool_roles or not set(pool_roles) <= {"controller", "broker"}:
            problems.append(Problem(where, "spec.roles must be a non-empty subset of controller, broker"))
        if _dict(spec.get("storage")).get("type") not in ("jbod", "ephemeral", "persistent-claim"):
            problems.append(Problem(where, "has no valid spec.storage.type"))
        limits = _dict(_dict(spec.get("resources")).get("limits"))
        if "memory" not in limits or "cpu" not in limits:
            problems.append(Problem(where, "has no spec.resources.limits for cpu and memory"))
    for topic in index.kind("KafkaTopic"):
        cluster = labels_of(topic).get(STRIMZI_CLUSTER_LABEL)
        same_namespace = [k for k in clusters if namespace_of(k) == namespace_of(topic)]
        if cluster and same_namespace and not any(name_of(k) == cluster for k in same_namespace):
            problems.append(Problem(ref(topic), f"belongs to Kafka '{cluster}', which is not in its namespace"))
    return problems


def _monitor(monitor: Obj, endpoints_field: str, problems: list[Problem]) -> tuple[str, Obj, Obj, list[Any]] | None:
    """A monitor's name, spec, selector and endpoints; None (and a problem) when it selects nothing."""
    where, spec = ref(monitor), _dict(monitor.get("spec"))
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        problems.append(Problem(where, "has no spec.selector"))
        return None
    endpoints = _list(spec.get(endpoints_field))
    if not endpoints:
        problems.append(Problem(where, f"has no spec.{endpoints_field}"))
    return where, spec, selector, endpoints


def check_monitors(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    for monitor in index.kind("ServiceMonitor"):
        if (read := _monitor(monitor, "endpoints", problems)) is None:
            continue
        where, spec, selector, endpoints = read
        services = [s for s in index.kind("Service", namespace_of(monitor)) if selector_matches(selector, labels_of(s))]
        if not services and "namespaceSelector" not in spec:
            problems.append(Problem(where, "selects no Service in its namespace"))
        names = {str(_dict(p).get("name")) for s in services for p in _list(_dict(s.get("spec")).get("ports"))}
        for endpoint in endpoints:
            port = _dict(endpoint).get("port")
            if not port and not _dict(endpoint).get("targetPort"):
                problems.append(Problem(where, "has an endpoint without port"))
            elif port and services and port not in names:
                problems.append(Problem(where, f"endpoint port {port!r} is not a port name of the selected Services"))
    for monitor in index.kind("PodMonitor"):
        if (read := _monitor(monitor, "podMetricsEndpoints", problems)) is None:
            continue
        where, spec, selector, endpoints = read
        workloads = [
            w
            for w in index.workloads()
            if namespace_of(w) == namespace_of(monitor) and selector_matches(selector, pod_labels(w))
        ]
        if not workloads and "namespaceSelector" not in spec:
            problems.append(Problem(where, "selects no pods in its namespace"))
        for endpoint in endpoints:
            port = _dict(endpoint).get("port")
            if not port:
                problems.append(Problem(where, "has an endpoint without port"))
            elif not all(port in container_ports(w) for w in workloads):
                problems.append(Problem(where, f"endpoint port {port!r} is not a container port of the selected pods"))
    return problems
