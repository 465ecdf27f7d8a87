"""promtool (installed by ``make promtool``) and the project's metric conventions, for tests that check what the
processes expose and what the rules and the dashboard read."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from typing import Final

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import ROOT

CACHED_PROMTOOL: Final = ROOT / ".cache" / "bin" / "promtool"
#: Base units only (Prometheus' naming guide): no milli/micro seconds, kilo/mega bytes, minutes, hours.
NON_BASE_UNITS: Final = re.compile(
    r"_(ms|us|ns|milliseconds|microseconds|nanoseconds|minutes|hours|days|kb|mb|gb)(_|$)"
)
#: A label value that looks like an identifier (UUID, long hex or id-like token) makes a series per item: unbounded.
ID_LIKE: Final = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-|^[0-9a-f]{16,}$|^[A-Za-z0-9_-]{24,}$")
MAX_LABEL_VALUES: Final = 30


def promtool_path() -> str:
    """promtool: $PROMTOOL, else the one `make promtool` installs, else the PATH's; the test fails without one."""
    for candidate in (os.environ.get("PROMTOOL"), str(CACHED_PROMTOOL), shutil.which("promtool")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("promtool is not installed: run `make promtool` (make test does it before pytest)")


def promtool_lint(exposition: str) -> str:
    """`promtool check metrics` on a /metrics text: its complaints, empty when it has none."""
    result = subprocess.run(
        [promtool_path(), "check", "metrics"], input=exposition, capture_output=True, text=True, timeout=60, check=False
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip()


def convention_problems(exposition: str, prefixes: tuple[str, ...]) -> list[str]:
    """What in a /metrics text breaks the project's conventions beyond promtool's lint: every family named for its
    service (or a standard process_ one), counters ending in _total and nothing else doing so, base units, snake
    case, and label values from a bounded set (never an id)."""
    problems: list[str] = []
    values: dict[tuple[str, str], set[str]] = defaultdict(set)
    for family in text_string_to_metric_families(exposition):
        name = family.name
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            problems.append(f"{name}: not snake case")
        if not name.startswith((*prefixes, "process_")):
            problems.append(f"{name}: not named for its service ({', '.join(prefixes)})")
        if NON_BASE_UNITS.search(name):
            problems.append(f"{name}: not in base units (seconds, bytes)")
        for sample in family.samples:
            if family.type == "counter" and not sample.name.endswith(("_total", "_created")):
                problems.append(f"{sample.name}: a counter sample without _total")
            if family.type != "counter" and sample.name.endswith("_total"):
                problems.append(f"{sample.name}: a {family.type} named like a counter")
            for label, value in sample.labels.items():
                if not re.fullmatch(r"[a-z_][a-z0-9_]*", label):
                    problems.append(f"{sample.name}: label {label!r} not snake case")
                if ID_LIKE.search(value):
                    problems.append(f"{sample.name}: label {label}={value!r} looks like an id (unbounded)")
                values[(name, label)].add(value)
    problems += [
        f"{name}: label {label} has {len(seen)} values (over {MAX_LABEL_VALUES}: unbounded?)"
        for (name, label), seen in values.items()
        if len(seen) > MAX_LABEL_VALUES
    ]
    return problems
