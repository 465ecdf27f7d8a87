"""Reading rendered objects: kind, name, labels, selectors, pod templates, and an :class:`Index` of them all."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from deploy.validate.model import NAME_LABEL, WORKLOAD_KINDS, Obj


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
