"""Finding objects in rendered output, resolving a container's environment, and asserting what the validator rejects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from deploy.validate import OVERLAY_EXPECTATIONS, Obj, Problem, find_problems, kind_of, name_of


def find(objects: list[Obj], kind: str, name: str) -> Obj:
    matches = [obj for obj in objects if kind_of(obj) == kind and name_of(obj) == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def find_prefixed(objects: list[Obj], kind: str, name: str) -> Obj:
    """A ConfigMap by its name before kustomize appended the content hash."""
    matches = [obj for obj in objects if kind_of(obj) == kind and name_of(obj).rsplit("-", 1)[0] == name]
    assert len(matches) == 1, f"expected one {kind} {name}-<hash>, found {len(matches)}"
    return matches[0]


def container(objects: list[Obj], deployment: str) -> Obj:
    containers = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    only: Obj = containers[0]
    return only


def environment(objects: list[Obj], deployment: str) -> tuple[dict[str, str], dict[str, tuple[str, str]]]:
    """A container's plain environment (ConfigMaps and literals) and its Secret references (name -> (secret, key))."""
    spec = container(objects, deployment)
    plain: dict[str, str] = {}
    secrets: dict[str, tuple[str, str]] = {}
    for source in spec.get("envFrom", []):
        if "configMapRef" in source:
            plain.update(find(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for variable in spec.get("env", []):
        if "value" in variable:
            plain[variable["name"]] = variable["value"]
        elif "secretKeyRef" in variable.get("valueFrom", {}):
            reference = variable["valueFrom"]["secretKeyRef"]
            secrets[variable["name"]] = (reference["name"], reference["key"])
    return plain, secrets


# --- breaking rendered manifests (tests/deploy/test_policies*.py)

Fresh = Callable[[str], list[Obj]]
INGEST = "Deployment recall-pipeline/ingest"


def rejected(objects: list[Obj], obj: str, fragment: str, overlay: str = "prod") -> list[Problem]:
    """Assert the validator names ``obj`` with a message containing ``fragment``; return the problems."""
    problems = find_problems(objects, OVERLAY_EXPECTATIONS[overlay])
    assert problems, "the broken manifests passed validation"
    matching = [p for p in problems if p.object == obj and fragment in p.message]
    assert matching, f"no problem naming {obj!r} with {fragment!r}; got:\n" + "\n".join(map(str, problems))
    return problems


def ingest_container(objects: list[Obj]) -> dict[str, Any]:
    container: dict[str, Any] = find(objects, "Deployment", "ingest")["spec"]["template"]["spec"]["containers"][0]
    return container


def remove(objects: list[Obj], kind: str, name: str) -> None:
    objects.remove(find(objects, kind, name))
