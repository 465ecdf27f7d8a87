"""Recall's documented example payloads, read exactly as they are in ../shared/recall/examples/."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[4] / "shared" / "recall" / "examples"
if not EXAMPLES.is_dir():  # pragma: no cover - a checkout elsewhere
    EXAMPLES = Path("/work/shared/recall/examples")


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def example_names() -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob("*.json"))
