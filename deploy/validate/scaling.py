"""Scaling (HPA and KEDA targets, replica bounds, Kafka-lag scalers within the partitions, and, where the overlay
promises a secured Kafka, their authentication) and what an overlay promises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deploy.validate.availability import _autoscalers_by_target, _replica_bounds
from deploy.validate.model import (
    IMPLIES_DESCRIBE,
    KEDA_DEFAULT_MAX_REPLICAS,
    KEDA_KAFKA_SASL,
    KEDA_KAFKA_TLS,
    STRIMZI_CLUSTER_LABEL,
    Expectations,
    Obj,
    Problem,
)
from deploy.validate.objects import Index, _dict, _list, kind_of, labels_of, name_of, namespace_of, ref, workload_app
from deploy.validate.operators import AuthParameter, trigger_auth_parameters
from pipeline_common.topics import TopicSpec


def _topics_by_name(registry: Iterable[TopicSpec]) -> dict[str, TopicSpec]:
    return {spec.name: spec for spec in registry}


def check_kafka_trigger(trigger: Obj, target: Obj | None, topics: Mapping[str, TopicSpec]) -> list[str]:
    found: list[str] = []
    metadata = _dict(trigger.get("metadata"))
    for key, value in metadata.items():
        if not isinstance(value, str):
            found.append(f"kafka trigger metadata {key} must be a string (KEDA's CRD types it map[string]string)")
    for key in ("bootstrapServers", "consumerGroup", "topic", "lagThreshold"):
        if not metadata.get(key):
            found.append(f"kafka trigger has no metadata.{key}")
    if str(metadata.get("allowIdleConsumers", "false")).lower() == "true":
        found.append("kafka trigger sets allowIdleConsumers: replicas beyond the partition count would sit idle")
    topic = metadata.get("topic")
    if topic and topic not in topics:
        found.append(f"kafka trigger watches topic {topic!r}, which is not in the topic registry")
    elif topic and target is not None:
        app = workload_app(target)
        if app not in topics[topic].consumed_by:
            found.append(f"kafka trigger watches topic {topic!r}, which '{app}' does not consume (topic registry)")
    return found


def check_scaling(index: Index, registry: Iterable[TopicSpec]) -> list[Problem]:
    problems: list[Problem] = []
    topics = _topics_by_name(registry)
    for scaler in index.kind("HorizontalPodAutoscaler") + index.kind("ScaledObject"):
        where, spec = ref(scaler), _dict(scaler.get("spec"))
        target_ref = _dict(spec.get("scaleTargetRef"))
        target_kind, target_name = str(target_ref.get("kind", "Deployment")), target_ref.get("name")
        target = index.find(target_kind, namespace_of(scaler), str(target_name)) if target_name else None
        if not target_name:
            problems.append(Problem(where, "has no scaleTargetRef.name"))
        elif target is None:
            problems.append(
                Problem(
                    where,
                    f"scaleTargetRef names {target_kind} '{target_name}', which is not in the rendered output "
                    f"(namespace {namespace_of(scaler) or '(none)'})",
                )
            )
        if kind_of(scaler) == "HorizontalPodAutoscaler":
            low, high = spec.get("minReplicas", 1), spec.get("maxReplicas", 0)
        else:
            low = spec.get("minReplicaCount", 0)
            high = spec.get("maxReplicaCount", KEDA_DEFAULT_MAX_REPLICAS)
            triggers = _list(spec.get("triggers"))
            if not triggers:
                problems.append(Problem(where, "has no triggers"))
            partitions = []
            for trigger in triggers:
                trigger = _dict(trigger)
                if not trigger.get("type") or not isinstance(trigger.get("metadata"), dict):
                    problems.append(Problem(where, "has a trigger without type or metadata"))
                    continue
                if trigger["type"] == "kafka":
                    problems += [Problem(where, m) for m in check_kafka_trigger(trigger, target, topics)]
                    topic = _dict(trigger.get("metadata")).get("topic")
                    if topic in topics:
                        partitions.append((topics[topic].partitions, topic))
            if partitions and isinstance(high, int):
                cap, topic = max(partitions)
                if high > cap:
                    problems.append(
                        Problem(
                            where,
                            f"maxReplicaCount {high} exceeds the {cap} partitions of {topic}: replicas beyond the "
                            "partition count would sit idle",
                        )
                    )
        if isinstance(low, int) and isinstance(high, int) and low > high:
            problems.append(Problem(where, f"minimum replicas {low} exceed maximum replicas {high}"))
    for (namespace, kind, name), scalers in _autoscalers_by_target(index).items():
        target = index.find(kind, namespace, name)
        if target is None:
            continue
        if len(scalers) > 1:
            names = ", ".join(ref(s) for s in scalers)
            problems.append(Problem(ref(target), f"is scaled by more than one autoscaler ({names})"))
        if "replicas" in _dict(target.get("spec")):
            problems.append(
                Problem(
                    ref(target),
                    f"sets spec.replicas although {ref(scalers[0])} scales it: every apply would reset the count",
                )
            )
    return problems


def check_expectations(index: Index, expectations: Expectations) -> list[Problem]:
    problems: list[Problem] = []
    autoscalers = _autoscalers_by_target(index)
    present = {workload_app(w) for w in index.workloads()} | {name_of(w) for w in index.workloads()}
    for name in sorted(expectations.required_workloads - present):
        problems.append(Problem(f"Deployment {name}", "is missing from the output"))
    for kind in sorted(expectations.required_kinds):
        if not index.kind(kind):
            problems.append(Problem(kind, "no object of this kind in the output"))
    for workload in index.workloads():
        where = ref(workload)
        if {workload_app(workload), name_of(workload)} & expectations.forbidden_workloads:
            problems.append(Problem(where, "must not be deployed in this environment"))
        scalers = autoscalers.get((namespace_of(workload), kind_of(workload), name_of(workload)), [])
        low, high = _replica_bounds(workload, scalers)
        if low < expectations.min_replicas:
            problems.append(
                Problem(where, f"may run {low} replica(s); this environment needs at least {expectations.min_replicas}")
            )
        if expectations.max_replicas is not None and high > expectations.max_replicas:
            problems.append(
                Problem(where, f"may run {high} replicas; this environment allows at most {expectations.max_replicas}")
            )
    return problems


def _trigger_authentication(index: Index, scaler: Obj, reference: Obj) -> Obj | None:
    kind = str(reference.get("kind") or "TriggerAuthentication")
    if kind == "ClusterTriggerAuthentication":
        return next((a for a in index.kind(kind) if name_of(a) == reference.get("name")), None)
    return index.find(kind, namespace_of(scaler), str(reference.get("name")))


def _kafka_auth_problems(auth: Obj, index: Index) -> list[str]:
    """What keeps KEDA's kafka scaler from reaching a Strimzi TLS listener as a KafkaUser of this namespace."""
    found: list[str] = []
    parameters = trigger_auth_parameters(auth, index)
    literal = {name: p.value for name, p in parameters.items() if p.source == "ConfigMap"}
    if literal.get("sasl") != KEDA_KAFKA_SASL:
        found.append(f"sasl must be {KEDA_KAFKA_SASL} (Strimzi scram-sha-512 users), not {literal.get('sasl')!r}")
    if literal.get("tls") != KEDA_KAFKA_TLS:
        found.append(f"tls must be {KEDA_KAFKA_TLS} (the cluster's TLS listener), not {literal.get('tls')!r}")
    users = {name_of(u): u for u in index.kind("KafkaUser", namespace_of(auth))}
    username, password = literal.get("username"), parameters.get("password", AuthParameter("", "", ""))
    if username not in users:
        found.append(
            f"username {username!r} names no KafkaUser in its namespace (a literal in a ConfigMap: Strimzi's user "
            "Secret has no username key)"
        )
    elif (password.source, password.name, password.key) != ("Secret", username, "password"):
        found.append(
            f"username {username!r} is not the KafkaUser whose Secret gives the password "
            f"({password.source or 'no'} {password.name!r}, key {password.key!r}): use Secret {username!r}, "
            "key `password`"
        )
    cluster = labels_of(users[username]).get(STRIMZI_CLUSTER_LABEL) if username in users else None
    cluster_ca = f"{cluster or '<cluster>'}-cluster-ca-cert"
    ca = parameters.get("ca", AuthParameter("", "", ""))
    if (ca.source, ca.name, ca.key) != ("Secret", cluster_ca, "ca.crt"):
        found.append(f"ca must be ca.crt of the Secret {cluster_ca} (the cluster CA): KEDA would not trust the broker")
    return found


def _may_describe(user: Obj, kind: str, name: str) -> bool:
    acls = _list(_dict(_dict(_dict(user).get("spec")).get("authorization")).get("acls"))
    for acl in acls:
        resource = _dict(_dict(acl).get("resource"))
        operations = {str(op) for op in _list(_dict(acl).get("operations")) or [_dict(acl).get("operation")]}
        if (resource.get("type"), resource.get("name")) == (kind, name) and operations & IMPLIES_DESCRIBE:
            return True
    return False


def check_lag_scaler_authentication(index: Index) -> list[Problem]:
    """For an overlay with a secured Kafka: every kafka trigger names a TriggerAuthentication in the output that gives
    SCRAM-SHA-512 over TLS with the cluster CA as a KafkaUser that may Describe the group and topic it measures."""
    problems: list[Problem] = []
    checked: set[str] = set()
    for scaler in index.kind("ScaledObject"):
        for trigger in _list(_dict(scaler.get("spec")).get("triggers")):
            trigger = _dict(trigger)
            if trigger.get("type") != "kafka":
                continue
            metadata = _dict(trigger.get("metadata"))
            topic, group = metadata.get("topic"), metadata.get("consumerGroup")
            reference = _dict(trigger.get("authenticationRef"))
            if not reference.get("name"):
                problems.append(
                    Problem(
                        ref(scaler),
                        f"kafka trigger on {topic} has no authenticationRef: KEDA would connect to the TLS listener "
                        "unauthenticated",
                    )
                )
                continue
            auth = _trigger_authentication(index, scaler, reference)
            if auth is None:
                kind = reference.get("kind") or "TriggerAuthentication"
                problems.append(
                    Problem(
                        ref(scaler),
                        f"kafka trigger on {topic} uses {kind} '{reference['name']}', which is not in the output",
                    )
                )
                continue
            if ref(auth) not in checked:
                checked.add(ref(auth))
                problems += [Problem(ref(auth), message) for message in _kafka_auth_problems(auth, index)]
            username = trigger_auth_parameters(auth, index).get("username", AuthParameter("", "", "")).value
            user = index.find("KafkaUser", namespace_of(auth), str(username)) if username else None
            for kind, name in (("group", group), ("topic", topic)):
                if user is not None and not _may_describe(user, kind, str(name)):
                    problems.append(
                        Problem(
                            ref(scaler),
                            f"kafka trigger on {topic} authenticates as '{username}', which may not "
                            f"Describe {kind} {name}: KEDA could not measure the lag",
                        )
                    )
    return problems
