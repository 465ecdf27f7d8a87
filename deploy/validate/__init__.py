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
  never goes beyond the partition count of the topics it watches; where the overlay promises ``kafka_tls``, every
  Kafka-lag trigger authenticates through a ``TriggerAuthentication`` (SCRAM-SHA-512 over TLS, the cluster CA) as a
  KafkaUser that may Describe the group and topic it measures;
* **topics**: the ``KafkaTopic`` resources are exactly the topic registry (name, partitions, retention, cleanup
  policy), each with ``spec.topicName`` set.
* **monitoring** (:mod:`deploy.monitoring`): every ``PrometheusRule`` alert has a severity, a summary, a description
  and a runbook URL; every dashboard a ``grafana_dashboard`` ConfigMap carries fits Grafana's dashboard schema and grid;
* **Kafka security** (:mod:`deploy.kafka_security`): ``KafkaUser`` ACLs are exactly the registry's, and in an overlay
  that promises it every service connects over TLS with its own user, its Secret and the cluster CA.

``python -m deploy.validate [overlay ...]`` renders the overlays and prints the problems (exit 1 if any).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence

from deploy import monitoring
from deploy.validate.availability import check_availability_and_isolation
from deploy.validate.cronjobs import check_cronjob, check_cronjobs, cronjob_pod
from deploy.validate.model import (
    CUSTOM_GROUPS,
    CUSTOM_RESOURCES,
    ENVIRONMENT_TOPIC_CONFIG,
    KEDA_DEFAULT_MAX_REPLICAS,
    KUBERNETES_VERSIONS,
    NAME_LABEL,
    OLDEST_KUBERNETES,
    OVERLAY_EXPECTATIONS,
    SECRET_NAME,
    SERVICES,
    STRIMZI_CLUSTER_LABEL,
    WORKLOAD_KINDS,
    WRITABLE_TMP,
    Expectations,
    ManifestError,
    Obj,
    Problem,
)
from deploy.validate.objects import (
    Index,
    container_ports,
    containers_of,
    group_of,
    kind_of,
    labels_of,
    name_of,
    namespace_of,
    plain_selector_matches,
    pod_labels,
    pod_spec,
    pod_template,
    ref,
    selector_matches,
    workload_app,
)
from deploy.validate.operators import check_monitors, check_strimzi, check_trigger_authentications
from deploy.validate.scaling import (
    check_expectations,
    check_kafka_trigger,
    check_lag_scaler_authentication,
    check_scaling,
)
from deploy.validate.schemas import check_schema
from deploy.validate.topics import check_topics
from deploy.validate.workloads import check_container, check_secrets_and_config, check_workloads
from pipeline_common.topics import REGISTRY, TopicSpec

__all__ = [
    "CUSTOM_GROUPS",
    "CUSTOM_RESOURCES",
    "ENVIRONMENT_TOPIC_CONFIG",
    "KEDA_DEFAULT_MAX_REPLICAS",
    "KUBERNETES_VERSIONS",
    "NAME_LABEL",
    "OLDEST_KUBERNETES",
    "OVERLAY_EXPECTATIONS",
    "SECRET_NAME",
    "SERVICES",
    "STRIMZI_CLUSTER_LABEL",
    "WORKLOAD_KINDS",
    "WRITABLE_TMP",
    "Expectations",
    "Index",
    "ManifestError",
    "Obj",
    "Problem",
    "check_availability_and_isolation",
    "check_container",
    "check_cronjob",
    "check_cronjobs",
    "check_duplicates",
    "check_expectations",
    "check_kafka_trigger",
    "check_lag_scaler_authentication",
    "check_monitors",
    "check_scaling",
    "check_schema",
    "check_secrets_and_config",
    "check_strimzi",
    "check_topics",
    "check_trigger_authentications",
    "check_workloads",
    "container_ports",
    "containers_of",
    "cronjob_pod",
    "find_problems",
    "group_of",
    "kind_of",
    "labels_of",
    "main",
    "name_of",
    "namespace_of",
    "plain_selector_matches",
    "pod_labels",
    "pod_spec",
    "pod_template",
    "ref",
    "selector_matches",
    "validate_manifests",
    "workload_app",
]


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
    problems += check_cronjobs(index)
    problems += check_secrets_and_config(index)
    problems += check_availability_and_isolation(index)
    problems += check_scaling(index, registry)
    problems += check_topics(index, registry, expectations or Expectations())
    problems += check_strimzi(index)
    problems += check_monitors(index)
    problems += check_trigger_authentications(index)
    problems += [Problem(where, message) for where, message in monitoring.check(index.objects)]
    from deploy.kafka_security import check_kafka_security  # it builds on this package's public names

    problems += check_kafka_security(index, registry, expectations)
    if expectations is not None:
        problems += check_expectations(index, expectations)
        if expectations.kafka_tls:
            problems += check_lag_scaler_authentication(index)
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
