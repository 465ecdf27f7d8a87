"""Workloads (resources, probes, security context, images, environment) and secrets and config."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from deploy.validate.model import SECRET_NAME, WRITABLE_TMP, Obj, Problem
from deploy.validate.objects import (
    Index,
    _dict,
    _list,
    container_ports,
    containers_of,
    namespace_of,
    pod_labels,
    pod_spec,
    ref,
    selector_matches,
)


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
