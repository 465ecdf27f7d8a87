"""Schemas: core objects strictly against the supported Kubernetes releases; custom resources' apiVersions."""

from __future__ import annotations

import functools
import json

import kubernetes_validate

from deploy.validate.model import CUSTOM_GROUPS, CUSTOM_RESOURCES, KUBERNETES_VERSIONS, Obj, Problem
from deploy.validate.objects import group_of, kind_of, name_of, ref


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
