"""The ledger: the checks a run draws, its sections, and how it is printed; the versions it records."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from devkit import ROOT
from devkit.demo import console


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Ledger:
    checks: list[Check] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            **self.sections,
        }


def sample(items: Iterable[Any], limit: int = 20) -> list[Any]:
    return list(items)[:limit]


def versions() -> dict[str, Any]:
    from importlib.metadata import version

    def git(*args: str) -> str | None:
        result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return result.stdout.strip() or None if result.returncode == 0 else None

    packages = {}
    for name in ("aiokafka", "faust-streaming", "fastapi", "httpx", "hypothesis"):
        with contextlib.suppress(Exception):
            packages[name] = version(name)
    kafka_version = os.environ.get("KAFKA_VERSION")
    if kafka_version is None:
        pom = (ROOT / "scripts" / "kafka" / "pom.xml").read_text()
        kafka_version = pom.split("<kafka.version>", 1)[1].split("<", 1)[0] if "<kafka.version>" in pom else None
    return {
        "python": platform.python_version(),
        "kafka": kafka_version,
        "packages": packages,
        "git": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()},
    }


def print_ledger(ledger: Ledger, path: Path) -> None:
    table = Table(title="Chaos ledger", show_lines=False)
    table.add_column("check", overflow="fold")
    table.add_column("", width=4)
    table.add_column("detail", overflow="fold")
    for check in ledger.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    timing = ledger.sections.get("timing", {})
    faults = ledger.sections.get("faults", [])
    kinds = Counter(event["kind"] for event in faults)
    console.print(
        f"faults: {dict(kinds)}; last fault over at {timing.get('last_fault_over_at_s')}s; "
        f"last recording ended {timing.get('drain_after_last_fault_s')}s after it; consumers caught up "
        f"{timing.get('quiescent_after_last_fault_s')}s after it; latency {timing.get('latency_s')}",
        highlight=False,
    )
    console.print(f"ledger: {path}", highlight=False)
    console.print("[green]the ledger balances[/]" if ledger.ok else "[red]the ledger does not balance[/]")
