"""Offline validation of rendered Kubernetes manifests: schemas, custom resources and the deployment's policies.

:func:`find_problems` takes the objects an overlay renders to and returns every problem it finds, each naming the
object (``Deployment recall-pipeline/ingest: container 'ingest' has no resources.limits.memory``):

* **schemas**: every core object is validated strictly (unknown fields fail) with ``kubernetes-validate`` against
  the oldest Kubernetes release the project supports and the newest one the package knows, so an unknown core kind
  or an apiVersion removed in either fails; the custom resources (Strimzi, KEDA, Prometheus Operator) are checked
  for the apiVersions their operators serve and the fields they require;
* **workloads**: every container has requests and limits, liveness and readiness probes (liveness never on the
  readiness endpoint), runs as non-root with a read-only root filesystem, no privilege escalation, all
  capabilities dropped, seccomp ``RuntimeDefault``, a writable ``/tmp``, a pinned image, no literal secret in its
  environment; every pod has its own ServiceAccount with no token automount and topology spread constraints;
* **secrets**: no ``Secret`` carries data, no ``ConfigMap`` holds a secret-looking key;
* **availability and isolation**: every workload has a PodDisruptionBudget that allows evictions and is selected by
  a NetworkPolicy restricting both ingress and egress; Services and monitors select pods and name real ports;
* **scaling**: every ``scaleTargetRef`` (HPA, KEDA ``ScaledObject``) names a Deployment present in the output, at
  most one autoscaler per Deployment, autoscaled Deployments leave ``spec.replicas`` to it, and a Kafka-lag scaler
  never goes beyond the partition count of the topics it watches;
* **topics**: the ``KafkaTopic`` resources are exactly the topic registry (name, partitions, retention, cleanup
  policy), each with ``spec.topicName`` set;
* **Kafka security** (deploy/kafka_security.py): ``KafkaUser`` ACLs are exactly the registry's, and in an overlay
  that promises it every service connects over TLS with its own user, its Secret and the cluster CA.

``python -m deploy.validate [overlay ...]`` renders the overlays and prints the problems (exit 1 if any).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import kubernetes_validate

from pipeline_common.topics import REGISTRY, TopicSpec

Obj = dict[str, Any]

#: The oldest Kubernetes release the manifests support, and the newest the bundled schemas know.
OLDEST_KUBERNETES: Final = "1.30"
KUBERNETES_VERSIONS: Final = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())

#: Custom resources: (group, kind) -> the apiVersions their operators serve today.
CUSTOM_RESOURCES: Final[Mapping[tuple[str, str], tuple[str, ...]]] = {
    ("kafka.strimzi.io", "Kafka"): ("v1",),
    ("kafka.strimzi.io", "KafkaNodePool"): ("v1",),
    ("kafka.strimzi.io", "KafkaTopic"): ("v1",),
    ("kafka.strimzi.io", "KafkaUser"): ("v1",),
    ("keda.sh", "ScaledObject"): ("v1alpha1",),
    ("keda.sh", "TriggerAuthentication"): ("v1alpha1",),
    ("monitoring.coreos.com", "ServiceMonitor"): ("v1",),
    ("monitoring.coreos.com", "PodMonitor"): ("v1",),
    ("monitoring.coreos.com", "PrometheusRule"): ("v1",),
}
CUSTOM_GROUPS: Final = frozenset(group for group, _ in CUSTOM_RESOURCES)
WORKLOAD_KINDS: Final = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
STRIMZI_CLUSTER_LABEL: Final = "strimzi.io/cluster"
#: Topic configuration a KafkaTopic may set besides the registry's (replication is per environment).
ENVIRONMENT_TOPIC_CONFIG: Final = frozenset({"min.insync.replicas"})
KEDA_DEFAULT_MAX_REPLICAS: Final = 100
SECRET_NAME: Final = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|ACCESS_KEY|PRIVATE_KEY|CREDENTIAL", re.I)
NAME_LABEL: Final = "app.kubernetes.io/name"
#: Python's tempfile needs a writable /tmp when the root filesystem is read-only (the path is the check, not a use).
WRITABLE_TMP: Final = "/tmp"  # noqa: S108


@dataclass(frozen=True, order=True)
class Problem:
    """One finding: the object it is about (``Kind namespace/name``) and what is wrong."""

    object: str
    message: str

    def __str__(self) -> str:
        return f"{self.object}: {self.message}"


class ManifestError(Exception):
    """The manifests break one or more rules; ``problems`` lists them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(f"{len(self.problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in self.problems))


@dataclass(frozen=True)
class Expectations:
    """What one overlay promises beyond the general rules."""

    #: Replicas and min.insync.replicas every KafkaTopic must have (None: any).
    topic_replicas: int | None = None
    topic_min_insync_replicas: int | None = None
    #: Bounds on every workload's replica count (from its autoscaler, else spec.replicas).
    min_replicas: int = 1
    max_replicas: int | None = None
    #: Workloads (by name) that must, or must not, be present.
    required_workloads: frozenset[str] = frozenset()
    forbidden_workloads: frozenset[str] = frozenset()
    #: Kinds that must be present (e.g. the dev overlay's own Kafka).
    required_kinds: frozenset[str] = frozenset()
    #: Every service connects over TLS with its own KafkaUser (deploy/kafka_security.py).
    kafka_tls: bool = False


SERVICES: Final = frozenset({"ingest", "transcriber", "fetcher"})
OVERLAY_EXPECTATIONS: Final[Mapping[str, Expectations]] = {
    "dev": Expectations(
        topic_replicas=1,
        topic_min_insync_replicas=1,
        max_replicas=1,
        required_workloads=SERVICES | {"recall-sim"},
        required_kinds=frozenset({"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject", "HorizontalPodAutoscaler"}),
    ),
    "prod": Expectations(
        topic_replicas=3,
        topic_min_insync_replicas=2,
        min_replicas=2,
        required_workloads=SERVICES,
        forbidden_workloads=frozenset({"recall-sim"}),
        required_kinds=frozenset({"KafkaTopic", "KafkaUser", "ScaledObject", "HorizontalPodAutoscaler", "Ingress"}),
        kafka_tls=True,
    ),
}


# ---------------------------------------------------------------------------------------------------------- helpers


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def kind_of(obj: Obj) -> str:
    return str(obj.get("kind") or "?")


def name_of(obj: Obj) -> str:
    return str(_dict(obj.get("metadata")).get("name") or "?")


def namespace_of(obj: Obj) -> str:
    return str(_dict(obj.get("metadata")).get("namespace") or "")


def group_of(obj: Obj) -> str:
    api_version = str(obj.get("apiVersion") or "")
    return api_version.split("/", 1)[0] if "/" in api_version else ""


def ref(obj: Obj) -> str:
    """How a problem names an object: ``Kind namespace/name`` (``Kind name`` when it has no namespace)."""
    namespace = namespace_of(obj)
    return f"{kind_of(obj)} {namespace}/{name_of(obj)}" if namespace else f"{kind_of(obj)} {name_of(obj)}"


def labels_of(obj: Obj) -> dict[str, str]:
    return _dict(_dict(obj.get("metadata")).get("labels"))


def selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions); an empty selector matches all."""
    selector = _dict(selector)
    for key, value in _dict(selector.get("matchLabels")).items():
        if labels.get(key) != value:
            return False
    for item in _list(selector.get("matchExpressions")):
        expression = _dict(item)
        key = str(expression.get("key"))
        operator, values = expression.get("operator"), _list(expression.get("values"))
        present = key in labels
        if (
            (operator == "In" and (not present or labels[key] not in values))
            or (operator == "NotIn" and present and labels[key] in values)
            or (operator == "Exists" and not present)
            or (operator == "DoesNotExist" and present)
        ):
            return False
    return True


def plain_selector_matches(selector: Any, labels: Mapping[str, str]) -> bool:
    """A Service's selector: a plain map, all entries must match; an empty one selects nothing we manage."""
    selector = _dict(selector)
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def pod_template(obj: Obj) -> Obj:
    return _dict(_dict(obj.get("spec")).get("template"))


def pod_labels(workload: Obj) -> dict[str, str]:
    return labels_of(pod_template(workload))


def pod_spec(workload: Obj) -> Obj:
    return _dict(pod_template(workload).get("spec"))


def containers_of(workload: Obj, *, init: bool = True) -> Iterator[tuple[Obj, bool]]:
    spec = pod_spec(workload)
    for container in _list(spec.get("containers")):
        yield _dict(container), False
    if init:
        for container in _list(spec.get("initContainers")):
            yield _dict(container), True


def container_ports(workload: Obj) -> dict[str | int, int]:
    """Named and numbered container ports of a workload: name -> number and number -> number."""
    ports: dict[str | int, int] = {}
    for container, _ in containers_of(workload, init=False):
        for port in _list(container.get("ports")):
            port = _dict(port)
            number = port.get("containerPort")
            if isinstance(number, int):
                ports[number] = number
                if port.get("name"):
                    ports[str(port["name"])] = number
    return ports


def workload_app(workload: Obj) -> str:
    """The service a workload runs: its pods' ``app.kubernetes.io/name``, else its own name."""
    return pod_labels(workload).get(NAME_LABEL) or name_of(workload)


class Index:
    """The rendered objects, by kind and namespace."""

    def __init__(self, objects: Iterable[Obj]) -> None:
        self.objects = [obj for obj in objects if isinstance(obj, dict)]
        self.by_kind: dict[str, list[Obj]] = defaultdict(list)
        for obj in self.objects:
            self.by_kind[kind_of(obj)].append(obj)

    def kind(self, kind: str, namespace: str | None = None) -> list[Obj]:
        return [obj for obj in self.by_kind.get(kind, []) if namespace is None or namespace_of(obj) == namespace]

    def workloads(self) -> list[Obj]:
        return [obj for obj in self.objects if kind_of(obj) in WORKLOAD_KINDS]

    def find(self, kind: str, namespace: str, name: str) -> Obj | None:
        for obj in self.kind(kind, namespace):
            if name_of(obj) == name:
                return obj
        return None


# ----------------------------------------------------------------------------------------------------------- schemas


@functools.lru_cache(maxsize=4096)
def _core_schema_errors(document: str, version: str) -> tuple[str, ...]:
    obj = json.loads(document)
    try:
        kubernetes_validate.validate(obj, version, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return (
            f"{obj.get('apiVersion')} {obj.get('kind')} is not served by Kubernetes {version}: unknown kind or "
            "removed apiVersion",
        )
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path) or "(top level)"
        return (f"does not match the Kubernetes {version} schema at {path}: {error.message}",)
    return ()


def check_schema(obj: Obj) -> list[Problem]:
    """The object's apiVersion/kind exist and its fields match the schema (core) or the CRD's needs (custom)."""
    where = ref(obj)
    for required in ("apiVersion", "kind"):
        if not isinstance(obj.get(required), str) or not obj.get(required):
            return [Problem(where, f"has no {required}")]
    if name_of(obj) == "?":
        return [Problem(where, "has no metadata.name")]
    group, api_version, kind = group_of(obj), str(obj["apiVersion"]), kind_of(obj)
    if group in CUSTOM_GROUPS:
        served = CUSTOM_RESOURCES.get((group, kind))
        if served is None:
            return [Problem(where, f"{kind} is not a known kind of {group}")]
        version = api_version.split("/", 1)[1]
        if version not in served:
            wanted = " or ".join(f"{group}/{v}" for v in served)
            return [Problem(where, f"apiVersion {api_version} is not served by the operator; use {wanted}")]
        return []
    if "." in group and not group.endswith(".k8s.io"):
        return [Problem(where, f"{api_version} {kind} is a custom resource this validator does not know")]
    document = json.dumps(obj, sort_keys=True)
    messages: dict[str, None] = {}
    for version in KUBERNETES_VERSIONS:
        for message in _core_schema_errors(document, version):
            messages[message] = None
    return [Problem(where, message) for message in messages]


# --------------------------------------------------------------------------------------------------------- workloads


def _image_problem(image: Any) -> str | None:
    if not isinstance(image, str) or not image:
        return "has no image"
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag: pin a version or a digest"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {image!r} uses the moving tag 'latest': pin a version or a digest"
    return None


def _probe_path(probe: Any) -> str | None:
    http = _dict(_dict(probe).get("httpGet"))
    return str(http["path"]) if "path" in http else None


def _probe_port(probe: Any) -> Any:
    probe = _dict(probe)
    for handler in ("httpGet", "tcpSocket", "grpc"):
        if handler in probe:
            return _dict(probe[handler]).get("port")
    return None


def check_container(
    workload: Obj, container: Obj, *, init: bool, pod_security: Obj, ports: Mapping[str | int, int]
) -> list[str]:
    """Problems of one container (messages; the caller names the workload)."""
    name = container.get("name", "?")
    found: list[str] = []
    resources = _dict(container.get("resources"))
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in _dict(resources.get(section)):
                found.append(f"container '{name}' has no resources.{section}.{resource}")
    security = _dict(container.get("securityContext"))
    if security.get("runAsNonRoot", pod_security.get("runAsNonRoot")) is not True:
        found.append(f"container '{name}' may run as root: set securityContext.runAsNonRoot: true")
    if security.get("runAsUser", pod_security.get("runAsUser")) == 0:
        found.append(f"container '{name}' runs as UID 0")
    if security.get("readOnlyRootFilesystem") is not True:
        found.append(f"container '{name}' has a writable root filesystem: set readOnlyRootFilesystem: true")
    if security.get("allowPrivilegeEscalation") is not False:
        found.append(f"container '{name}' allows privilege escalation: set allowPrivilegeEscalation: false")
    if security.get("privileged") is True:
        found.append(f"container '{name}' is privileged")
    capabilities = _dict(security.get("capabilities"))
    if "ALL" not in _list(capabilities.get("drop")):
        found.append(f"container '{name}' keeps its Linux capabilities: drop ALL")
    if _list(capabilities.get("add")):
        found.append(f"container '{name}' adds capabilities {capabilities['add']}")
    seccomp = _dict(security.get("seccompProfile") or pod_security.get("seccompProfile")).get("type")
    if seccomp not in ("RuntimeDefault", "Localhost"):
        found.append(f"container '{name}' has no seccomp profile: set seccompProfile.type: RuntimeDefault")
    mounts = {str(_dict(mount).get("mountPath", "")).rstrip("/") for mount in _list(container.get("volumeMounts"))}
    if security.get("readOnlyRootFilesystem") is True and WRITABLE_TMP not in mounts:
        found.append(f"container '{name}' has a read-only root filesystem but no writable volume at /tmp")
    image_problem = _image_problem(container.get("image"))
    if image_problem:
        found.append(f"container '{name}' {image_problem}")
    for variable in _list(container.get("env")):
        variable = _dict(variable)
        if SECRET_NAME.search(str(variable.get("name", ""))) and "value" in variable:
            found.append(
                f"container '{name}' sets {variable.get('name')} to a literal value: reference a Secret "
                "(valueFrom.secretKeyRef)"
            )
    if init:
        return found
    for kind in ("livenessProbe", "readinessProbe"):
        probe = container.get(kind)
        if not probe:
            found.append(f"container '{name}' has no {kind}")
            continue
        port = _probe_port(probe)
        if port is not None and port not in ports:
            found.append(f"container '{name}' {kind} uses port {port!r}, which no container port declares")
    liveness, readiness = _probe_path(container.get("livenessProbe")), _probe_path(container.get("readinessProbe"))
    if liveness is not None and liveness == readiness:
        found.append(
            f"container '{name}' livenessProbe checks the readiness endpoint {liveness}: liveness must only say "
            "the loop is alive, or a Kafka outage restarts every pod"
        )
    return found


def check_workloads(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    for workload in index.workloads():
        where, spec = ref(workload), pod_spec(workload)
        if not spec:
            problems.append(Problem(where, "has no pod template"))
            continue
        if not selector_matches(_dict(workload.get("spec")).get("selector"), pod_labels(workload)):
            problems.append(Problem(where, "spec.selector does not match its pod template's labels"))
        pod_security = _dict(spec.get("securityContext"))
        ports = container_ports(workload)
        for container, init in containers_of(workload):
            problems += [
                Problem(where, message)
                for message in check_container(workload, container, init=init, pod_security=pod_security, ports=ports)
            ]
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            if spec.get(flag) is True:
                problems.append(Problem(where, f"shares the node's namespaces ({flag})"))
        account_name = spec.get("serviceAccountName")
        if not account_name or account_name == "default":
            problems.append(Problem(where, "runs under the namespace's default ServiceAccount: give it its own"))
        else:
            account = index.find("ServiceAccount", namespace_of(workload), str(account_name))
            if account is None:
                problems.append(Problem(where, f"uses ServiceAccount '{account_name}', which is not in the output"))
            automount = spec.get("automountServiceAccountToken")
            if automount is None and account is not None:
                automount = account.get("automountServiceAccountToken")
            if automount is not False:
                problems.append(
                    Problem(where, "mounts a ServiceAccount token: set automountServiceAccountToken: false")
                )
        if not _list(spec.get("topologySpreadConstraints")):
            problems.append(Problem(where, "has no topologySpreadConstraints"))
    return problems


# ------------------------------------------------------------------------------------------------ secrets and config


def check_secrets_and_config(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    for secret in index.kind("Secret"):
        keys = sorted({*_dict(secret.get("data")), *_dict(secret.get("stringData"))})
        if keys:
            problems.append(
                Problem(
                    ref(secret),
                    f"carries data ({', '.join(keys)}): secret values never live in the repository; create the "
                    "Secret in the cluster (deploy/README.md)",
                )
            )
    for config_map in index.kind("ConfigMap"):
        for key in sorted(_dict(config_map.get("data"))):
            if SECRET_NAME.search(key):
                problems.append(Problem(ref(config_map), f"holds {key}, which looks like a secret: use a Secret"))
    return problems


# ------------------------------------------------------------------------------------- availability and isolation


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


# ----------------------------------------------------------------------------------------------------------- scaling


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


# ------------------------------------------------------------------------------------------------------------ topics


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


# ------------------------------------------------------------------------------------------- Strimzi and monitoring


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


def check_monitors(index: Index) -> list[Problem]:
    problems: list[Problem] = []
    for monitor in index.kind("ServiceMonitor"):
        where, spec = ref(monitor), _dict(monitor.get("spec"))
        selector = spec.get("selector")
        if not isinstance(selector, dict):
            problems.append(Problem(where, "has no spec.selector"))
            continue
        endpoints = _list(spec.get("endpoints"))
        if not endpoints:
            problems.append(Problem(where, "has no spec.endpoints"))
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
        where, spec = ref(monitor), _dict(monitor.get("spec"))
        selector = spec.get("selector")
        if not isinstance(selector, dict):
            problems.append(Problem(where, "has no spec.selector"))
            continue
        endpoints = _list(spec.get("podMetricsEndpoints"))
        if not endpoints:
            problems.append(Problem(where, "has no spec.podMetricsEndpoints"))
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


# -------------------------------------------------------------------------------------------------------------- api


def check_duplicates(index: Index) -> list[Problem]:
    seen: set[tuple[str, str, str, str]] = set()
    problems = []
    for obj in index.objects:
        key = (group_of(obj), kind_of(obj), namespace_of(obj), name_of(obj))
        if key in seen:
            problems.append(Problem(ref(obj), "is declared twice"))
        seen.add(key)
    return problems


def find_problems(
    objects: Iterable[Obj],
    expectations: Expectations | None = None,
    registry: Iterable[TopicSpec] = REGISTRY,
) -> list[Problem]:
    """Every problem of a rendered set of objects, sorted by the object they name."""
    index = Index(objects)
    registry = tuple(registry)
    problems: list[Problem] = []
    for obj in index.objects:
        problems += check_schema(obj)
    problems += check_duplicates(index)
    problems += check_workloads(index)
    problems += check_secrets_and_config(index)
    problems += check_availability_and_isolation(index)
    problems += check_scaling(index, registry)
    problems += check_topics(index, registry, expectations or Expectations())
    problems += check_strimzi(index)
    problems += check_monitors(index)
    from deploy.kafka_security import check_kafka_security  # it builds on this module's public names

    problems += check_kafka_security(index, registry, expectations)
    if expectations is not None:
        problems += check_expectations(index, expectations)
    return sorted(dict.fromkeys(problems))


def validate_manifests(
    objects: Iterable[Obj],
    expectations: Expectations | None = None,
    registry: Iterable[TopicSpec] = REGISTRY,
) -> None:
    """Raise :class:`ManifestError` listing every problem, or return quietly."""
    problems = find_problems(objects, expectations, registry)
    if problems:
        raise ManifestError(problems)


def main(argv: Sequence[str] | None = None) -> int:
    from deploy import kustomize

    parser = argparse.ArgumentParser(prog="python -m deploy.validate", description="Render and validate overlays.")
    parser.add_argument("overlays", nargs="*", help="overlay names (default: all under deploy/overlays)")
    args = parser.parse_args(argv)
    names = args.overlays or kustomize.overlays()
    command = kustomize.ensure_renderer()
    failed = False
    for name in names:
        objects = kustomize.render_overlay(name, command)
        problems = find_problems(objects, OVERLAY_EXPECTATIONS.get(name, Expectations()))
        if problems:
            failed = True
            print(f"overlay {name}: {len(problems)} problem(s)")
            for problem in problems:
                print(f"  - {problem}")
        else:
            kinds = sorted({kind_of(obj) for obj in objects})
            print(f"overlay {name}: {len(objects)} objects valid ({', '.join(kinds)})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
