"""The Strimzi resources (cluster, node pools, users), KEDA's TriggerAuthentications and the Prometheus Operator
monitors."""

from __future__ import annotations

from dataclasses import dataclass
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


#: The sources a TriggerAuthentication may take a parameter from (KEDA's authentication providers we resolve).
AUTH_SOURCES = {"secretTargetRef": "Secret", "configMapTargetRef": "ConfigMap", "env": "env"}


@dataclass(frozen=True)
class AuthParameter:
    """Where a TriggerAuthentication takes one parameter from; ``value``: a ConfigMap literal found in the output."""

    source: str  # Secret, ConfigMap or env
    name: str
    key: str
    value: str | None = None


def trigger_auth_parameters(auth: Obj, index: Index) -> dict[str, AuthParameter]:
    """parameter -> its source, with ConfigMap values resolved from the rendered output (a Secret's never are)."""
    found: dict[str, AuthParameter] = {}
    spec = _dict(auth.get("spec"))
    for field, source in AUTH_SOURCES.items():
        for item in _list(spec.get(field)):
            item = _dict(item)
            name = str(item.get("name", ""))
            key = str(item.get("key", item.get("containerName", "")))
            value = None
            if source == "ConfigMap":
                config_map = index.find("ConfigMap", namespace_of(auth), name)
                raw = _dict(config_map.get("data")).get(key) if config_map is not None else None
                value = str(raw) if raw is not None else None
            found[str(item.get("parameter"))] = AuthParameter(source, name, key, value)
    return found


def check_trigger_authentications(index: Index) -> list[Problem]:
    """Each reference of a TriggerAuthentication names a parameter, an object and a key; a ConfigMap it names is in
    the output (KEDA resolves it in the same namespace) and has that key."""
    problems: list[Problem] = []
    for auth in index.kind("TriggerAuthentication"):
        where, spec = ref(auth), _dict(auth.get("spec"))
        for field in ("secretTargetRef", "configMapTargetRef"):
            for item in _list(spec.get(field)):
                item = _dict(item)
                if not all(item.get(k) for k in ("parameter", "name", "key")):
                    problems.append(Problem(where, f"has a {field} entry without parameter, name and key"))
                    continue
                if field != "configMapTargetRef":
                    continue
                parameter, name, key = item["parameter"], item["name"], item["key"]
                config_map = index.find("ConfigMap", namespace_of(auth), str(name))
                if config_map is None:
                    problems.append(Problem(where, f"takes {parameter} from ConfigMap '{name}', not in its namespace"))
                elif str(key) not in _dict(config_map.get("data")):
                    problems.append(Problem(where, f"takes {parameter} from ConfigMap '{name}', which has no {key!r}"))
    return problems
