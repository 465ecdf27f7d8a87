"""Scaling (HPA and KEDA targets, replica bounds, Kafka-lag scalers within the partitions) and what an overlay
promises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from deploy.validate.availability import _autoscalers_by_target, _replica_bounds
from deploy.validate.model import KEDA_DEFAULT_MAX_REPLICAS, Expectations, Obj, Problem
from deploy.validate.objects import Index, _dict, _list, kind_of, name_of, namespace_of, ref, workload_app
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
