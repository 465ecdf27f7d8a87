"""The generated files: render them, find the stale ones, write them; ``python -m devkit.docs``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from devkit.docs.asyncapi import asyncapi_document
from devkit.docs.model import ASYNCAPI_FILE, DOCS_DIR, EVENT_MODELS, HEADER, SCHEMAS_DIR
from devkit.docs.schemas import json_schema


def _yaml(document: Mapping[str, Any]) -> str:
    import yaml  # a development dependency; imported here so importing this module never needs it

    text = yaml.safe_dump(
        dict(document), sort_keys=True, allow_unicode=True, default_flow_style=False, width=120, indent=2
    )
    return HEADER + str(text)


def _json(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_files() -> dict[str, str]:
    """Every generated file, by path relative to ``docs/``."""
    files = {ASYNCAPI_FILE: _yaml(asyncapi_document())}
    for model in EVENT_MODELS:
        files[f"{SCHEMAS_DIR}/{model.__name__}.json"] = _json(json_schema(model))
    return files


def _generated_schema_files(docs_dir: Path) -> set[str]:
    folder = docs_dir / SCHEMAS_DIR
    return {f"{SCHEMAS_DIR}/{path.name}" for path in folder.glob("*.json")} if folder.is_dir() else set()


def stale_files(docs_dir: Path = DOCS_DIR) -> list[str]:
    """Generated files that are missing or differ on disk, and schema files nothing generates any more."""
    files = render_files()
    stale = [name for name, text in files.items() if _read(docs_dir / name) != text]
    stale += sorted(f"{name} (no longer generated)" for name in _generated_schema_files(docs_dir) - set(files))
    return stale


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def write_files(docs_dir: Path = DOCS_DIR) -> list[str]:
    """Write what changed; remove schema files nothing generates; return the paths touched."""
    files = render_files()
    touched = []
    for name, text in files.items():
        path = docs_dir / name
        if _read(path) != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            touched.append(name)
    for name in sorted(_generated_schema_files(docs_dir) - set(files)):
        (docs_dir / name).unlink()
        touched.append(f"{name} (removed)")
    return touched


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devkit.docs", description="Generate docs/asyncapi.yaml and docs/schemas/*.json."
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when the checked-in files are stale")
    parser.add_argument("--docs-dir", type=Path, default=DOCS_DIR, help="where the documents live (default: docs/)")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.docs_dir)
        if stale:
            print("stale generated docs (run `make docs`):\n  " + "\n  ".join(stale), file=sys.stderr)
            return 1
        print(f"{args.docs_dir}: up to date")
        return 0
    touched = write_files(args.docs_dir)
    print("\n".join(f"wrote {args.docs_dir / name}" for name in touched) or f"{args.docs_dir}: already up to date")
    return 0
