"""Rendered overlays, shared by the deploy tests. Rendering is offline (kubectl kustomize, or the pinned kustomize)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest

from deploy import kustomize
from deploy.validate import Obj


@pytest.fixture(scope="session")
def renderer() -> list[str]:
    return kustomize.ensure_renderer()


@pytest.fixture(scope="session")
def rendered(renderer: list[str]) -> dict[str, list[Obj]]:
    """Every overlay's objects, rendered once per session. Tests must not mutate them: use ``fresh``."""
    return {name: kustomize.render_overlay(name, renderer) for name in kustomize.overlays()}


@pytest.fixture
def fresh(rendered: dict[str, list[Obj]]) -> Callable[[str], list[Obj]]:
    """A deep copy of an overlay's objects, safe to break."""

    def copy_of(overlay: str) -> list[Obj]:
        return copy.deepcopy(rendered[overlay])

    return copy_of
