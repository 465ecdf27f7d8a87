"""What the manifest generators (``deploy.topics``, ``deploy.users``) share: a directory of YAML files generated from
the topic registry, kept in step with it (``--check`` in CI, a write otherwise)::

    python -m deploy.topics            # write deploy/topics/ (make kube-topics; likewise deploy.users)
    python -m deploy.topics --check    # exit 1 and name the stale files when they differ"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from pipeline_common.topics import REGISTRY, TopicSpec

DEPLOY_DIR: Final = Path(__file__).resolve().parent


def with_kustomization(files: dict[str, str], header: str, dump: Callable[[dict[str, Any]], str]) -> dict[str, str]:
    """``files`` plus the kustomization.yaml that lists them, in order."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(files),
    }
    return {**files, "kustomization.yaml": header + dump(kustomization)}


def stale(directory: Path, wanted: dict[str, str], *, differs: str, unowned: str) -> list[str]:
    """The files of ``directory`` that differ from ``wanted`` (missing, changed or left over)."""
    problems = []
    for filename, content in wanted.items():
        path = directory / filename
        if not path.is_file():
            problems.append(f"{filename}: missing")
        elif path.read_text(encoding="utf-8") != content:
            problems.append(f"{filename}: {differs}")
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        if path.name not in wanted:
            problems.append(f"{path.name}: {unowned}")
    return problems


def write(directory: Path, wanted: dict[str, str]) -> list[str]:
    """Write ``wanted`` into ``directory``, removing YAML files it no longer holds; the names touched."""
    directory.mkdir(parents=True, exist_ok=True)
    changed = []
    for filename, content in wanted.items():
        path = directory / filename
        if not path.is_file() or path.read_text(encoding="utf-8") != content:
            path.write_text(content, encoding="utf-8")
            changed.append(filename)
    for path in sorted(directory.glob("*.yaml")):
        if path.name not in wanted:
            path.unlink()
            changed.append(path.name)
    return changed


def dump(document: dict[str, Any]) -> str:
    text: str = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=120, allow_unicode=True)
    return text


@dataclass(frozen=True)
class Generator:
    """One generator: ``deploy/<name>/`` from the registry, and its command line (``python -m deploy.<name>``,
    ``make kube-<name>``): ``--check`` or write, into ``--dir``."""

    doc: str | None  # the generator module's docstring; its first paragraph is the command's description
    directory: Path
    header: str
    #: File name -> the resource it holds, for a registry.
    documents: Callable[[Iterable[TopicSpec]], dict[str, dict[str, Any]]]
    differs: str  # why a stale file is stale, e.g. "differs from the registry"
    unowned: str  # why a left-over file is, e.g. "no registry topic generates it"
    up_to_date: str  # what the directory is up to date with, e.g. "the topic registry (9 topics)"

    def render_files(self, registry: Iterable[TopicSpec] = REGISTRY) -> dict[str, str]:
        """File name -> content of everything the directory holds, the kustomization.yaml that lists them last."""
        files = {filename: self.header + dump(document) for filename, document in self.documents(registry).items()}
        return with_kustomization(files, self.header, dump)

    def stale_files(self, directory: Path | None = None, registry: Iterable[TopicSpec] = REGISTRY) -> list[str]:
        """The files of ``directory`` that differ from the generator's output (missing, changed or left over)."""
        wanted = self.render_files(registry)
        return stale(directory or self.directory, wanted, differs=self.differs, unowned=self.unowned)

    def write_files(self, directory: Path | None = None, registry: Iterable[TopicSpec] = REGISTRY) -> list[str]:
        """Write ``directory`` from the registry, removing YAML files the registry no longer generates."""
        return write(directory or self.directory, self.render_files(registry))

    def main(self, argv: Sequence[str] | None = None) -> int:
        name = self.directory.name
        parser = argparse.ArgumentParser(prog=f"python -m deploy.{name}", description=(self.doc or "").split("\n\n")[0])
        parser.add_argument("--check", action="store_true", help=f"compare only; exit 1 when deploy/{name}/ is stale")
        parser.add_argument("--dir", type=Path, default=self.directory, help="output directory (default: %(default)s)")
        args = parser.parse_args(argv)
        if args.check:
            problems = self.stale_files(args.dir)
            if problems:
                print(f"{args.dir} is stale; run `make kube-{name}`:", file=sys.stderr)
                for problem in problems:
                    print(f"  {problem}", file=sys.stderr)
                return 1
            print(f"{args.dir}: up to date with {self.up_to_date}")
            return 0
        changed = self.write_files(args.dir)
        written = f"{args.dir}: {len(changed)} file(s) written or removed"
        print(written + (f": {', '.join(changed)}" if changed else ""))
        return 0
