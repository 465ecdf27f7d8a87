"""Availability and isolation: disruption budgets, network policies, Services and what they select."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from deploy.validate.model import KEDA_DEFAULT_MAX_REPLICAS, Obj, Problem
from deploy.validate.objects import (
    Index,
    _dict,
    _list,
    container_ports,
    kind_of,
    name_of,
    namespace_of,
    plain_selector_matches,
    pod_labels,
    ref,
    selector_matches,
)


def _replica_bounds(workload: Obj, autoscalers: Sequence[Obj]) -> tuple[int, int]:
    for scaler in autoscalers:
        spec = _dict(scaler.get("spec"))
        if kind_of(scaler) == "HorizontalPodAutoscaler":
            return int(spec.get("minReplicas", 1)), int(spec.get("maxReplicas", 1))
        if kind_of(scaler) == "ScaledObject":
            return int(spec.get("minReplicaCount", 0)), int(spec.get("maxReplicaCount", KEDA_DEFAULT_MAX_REPLICAS))
    replicas = _dict(workload.get("spec")).get("replicas", 1)
    replicas = replicas if isinstance(replicas, int) else 1
    return replicas, replicas


def _autoscalers_by_target(index: Index) -> dict[tuple[str, str, str], list[Obj]]:
    targets: dict[tuple[str, str, str], list[Obj]] = defaultdict(list)
    for scaler in index.kind("HorizontalPodAutoscaler") + index.kind("ScaledObject"):
        target = _dict(_dict(scaler.get("spec")).get("scaleTargetRef"))
        targets[(namespace_of(scaler), str(target.get("kind", "Deployment")), str(target.get("name")))].append(scaler)
    return targets


def _pdb_problem(pdb: Obj, minimum: int) -> str | None:
    spec = _dict(pdb.get("spec"))
    if "maxUnavailable" in spec and spec["maxUnavailable"] in (0, "0", "0%"):
        return "maxUnavailable 0 blocks every voluntary eviction (node drains hang)"
    min_available = spec.get("minAvailable")
    if min_available == "100%" or (isinstance(min_available, int) and min_available >= max(minimum, 1)):
        return f"minAvailable {min_available} with {minimum} replica(s) blocks every voluntary eviction"
    return None


def check_availability_and_isolation(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    autoscalers = _autoscalers_by_target(index)
    pdbs, policies = index.kind("PodDisruptionBudget"), index.kind("NetworkPolicy")
    for workload in index.workloads():
        where, namespace, labels = ref(workload), namespace_of(workload), pod_labels(workload)
        scalers = autoscalers.get((namespace, kind_of(workload), name_of(workload)), [])
        minimum, _ = _replica_bounds(workload, scalers)
        covering = [
            pdb
            for pdb in pdbs
            if namespace_of(pdb) == namespace and selector_matches(_dict(pdb.get("spec")).get("selector"), labels)
        ]
        if not covering:
            problems.append(Problem(where, "no PodDisruptionBudget selects its pods"))
        for pdb in covering:
            message = _pdb_problem(pdb, minimum)
            if message:
                problems.append(Problem(ref(pdb), message))
        types: set[str] = set()
        for policy in policies:
            spec = _dict(policy.get("spec"))
            if namespace_of(policy) == namespace and selector_matches(spec.get("podSelector"), labels):
                types.update(str(t) for t in _list(spec.get("policyTypes")) or ["Ingress"])
        missing = {"Ingress", "Egress"} - types
        if missing:
            problems.append(
                Problem(where, f"no NetworkPolicy restricts its {' and '.join(sorted(missing)).lower()} traffic")
            )
    workloads = index.workloads()
    for pdb in pdbs:
        selector = _dict(pdb.get("spec")).get("selector")
        if not any(
            namespace_of(w) == namespace_of(pdb) and selector_matches(selector, pod_labels(w)) for w in workloads
        ):
            problems.append(Problem(ref(pdb), "selects no pods of any workload in the output"))
    for service in index.kind("Service"):
        spec = _dict(service.get("spec"))
        if spec.get("type") == "ExternalName":
            continue
        selected = [
            w
            for w in workloads
            if namespace_of(w) == namespace_of(service) and plain_selector_matches(spec.get("selector"), pod_labels(w))
        ]
        if not selected:
            problems.append(Problem(ref(service), "selects no pods of any workload in the output"))
            continue
        for port in _list(spec.get("ports")):
            target = _dict(port).get("targetPort", _dict(port).get("port"))
            if not all(target in container_ports(w) for w in selected):
                problems.append(Problem(ref(service), f"targetPort {target!r} is not a port of the selected pods"))
    return problems
