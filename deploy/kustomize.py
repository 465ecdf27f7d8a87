"""Render kustomize directories offline.

The renderer is, in order of preference:

1. ``$KUSTOMIZE`` (a kustomize binary) when that variable is set;
2. ``kubectl kustomize`` when kubectl is on the PATH (it embeds kustomize; no network needed);
3. the pinned kustomize that ``make kustomize`` (``scripts/install-kustomize``) installs into ``.cache/bin``;
4. a ``kustomize`` on the PATH.

:func:`ensure_renderer` installs (3) when none is found and Go is available, so a fresh machine without kubectl
still renders the overlays.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import yaml

ROOT: Final = Path(__file__).resolve().parent.parent
DEPLOY_DIR: Final = ROOT / "deploy"
OVERLAYS_DIR: Final = DEPLOY_DIR / "overlays"
#: Keep in step with scripts/install-kustomize.
KUSTOMIZE_VERSION: Final = "v5.5.0"
CACHED_KUSTOMIZE: Final = ROOT / ".cache" / "bin" / "kustomize"
INSTALL_SCRIPT: Final = ROOT / "scripts" / "install-kustomize"
RENDER_TIMEOUT_SECONDS: Final = 120


class KustomizeNotFoundError(RuntimeError):
    """Neither kubectl nor a kustomize binary is available."""


class RenderError(RuntimeError):
    """kustomize could not render a directory."""


def overlays() -> list[str]:
    """The names of the overlays under ``deploy/overlays`` (``dev``, ``prod``)."""
    return sorted(path.name for path in OVERLAYS_DIR.iterdir() if (path / "kustomization.yaml").is_file())


def renderer() -> list[str]:
    """The command that renders a kustomization directory given as its last argument."""
    explicit = os.environ.get("KUSTOMIZE")
    if explicit:
        return [explicit, "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    if CACHED_KUSTOMIZE.is_file() and os.access(CACHED_KUSTOMIZE, os.X_OK):
        return [str(CACHED_KUSTOMIZE), "build"]
    kustomize = shutil.which("kustomize")
    if kustomize:
        return [kustomize, "build"]
    raise KustomizeNotFoundError(
        "no kustomize renderer: install kubectl, or run `make kustomize` "
        f"(go install sigs.k8s.io/kustomize/kustomize/v5@{KUSTOMIZE_VERSION} into .cache/bin)"
    )


def ensure_renderer() -> list[str]:
    """Like :func:`renderer`, but installs the pinned kustomize first when nothing is available and Go is."""
    try:
        return renderer()
    except KustomizeNotFoundError:
        if shutil.which("go") is None:
            raise
    subprocess.run([str(INSTALL_SCRIPT)], check=True, timeout=900)
    return renderer()


def parse(text: str) -> list[dict[str, Any]]:
    """The YAML documents of a multi-document stream, empty ones dropped."""
    return [document for document in yaml.safe_load_all(text) if document]


def render(path: Path, command: list[str] | None = None) -> list[dict[str, Any]]:
    """Render one kustomization directory into its objects."""
    command = command or renderer()
    result = subprocess.run(
        [*command, str(path)],
        capture_output=True,
        text=True,
        timeout=RENDER_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        raise RenderError(f"kustomize could not render {path}:\n{result.stderr.strip()}")
    return parse(result.stdout)


def render_overlay(name: str, command: list[str] | None = None) -> list[dict[str, Any]]:
    return render(OVERLAYS_DIR / name, command)
