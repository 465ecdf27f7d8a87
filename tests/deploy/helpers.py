"""Finding objects in rendered output, and resolving a container's environment."""

from __future__ import annotations

from deploy.validate import Obj, kind_of, name_of


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
