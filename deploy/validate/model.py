"""What a validation finds (:class:`Problem`), what an overlay promises (:class:`Expectations`), and the
constants the rules share."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import kubernetes_validate

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
#: What KEDA's kafka scaler must be given to reach a Strimzi TLS listener with a scram-sha-512 user (its auth params).
KEDA_KAFKA_SASL: Final = "scram_sha512"
KEDA_KAFKA_TLS: Final = "enable"
#: Kafka operations that imply Describe on the same resource (Kafka's ACL semantics).
IMPLIES_DESCRIBE: Final = frozenset({"Describe", "Read", "Write", "Delete", "Alter", "All"})
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
    #: Every service connects over TLS with its own KafkaUser (deploy/kafka_security.py), and every Kafka lag scaler
    #: authenticates with SCRAM over TLS through a TriggerAuthentication (deploy/validate/scaling.py).
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
