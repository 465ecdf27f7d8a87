"""Recall's documented example payloads, read exactly as they are in tests/fixtures/recall/ (see its README)."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "fixtures" / "recall"


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def example_names() -> list[str]:
    return sorted(path.name for path in EXAMPLES.glob("*.json"))
