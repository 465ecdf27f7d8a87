"""promtool and the Prometheus server (both installed by ``make promtool``) and the project's metric conventions, for
tests that check what the processes expose and how the alert rules judge it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import ROOT
from tests.support.http import free_port
from tests.support.waiting import wait_for_sync

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


CACHED_PROMETHEUS: Final = ROOT / ".cache" / "bin" / "prometheus"


def prometheus_path() -> str:
    """The Prometheus server `make promtool` installs beside promtool (or $PROMETHEUS, or the PATH's)."""
    for candidate in (os.environ.get("PROMETHEUS"), str(CACHED_PROMETHEUS), shutil.which("prometheus")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail("the Prometheus server is not installed: run `make promtool` (make test does it before pytest)")


@contextmanager
def running_prometheus(targets: dict[str, int], rules: dict[str, Any], home: Path) -> Iterator[httpx.Client]:
    """A real Prometheus on loopback scraping ``{job: port}`` every second and evaluating ``rules`` (a rule file's
    content) every second; targets carry namespace="e2e" and pod="<job>-0", as the Prometheus Operator would add."""
    (home / "rules.yaml").write_text(yaml.safe_dump(rules))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(home / "rules.yaml")],
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [
                    {"targets": [f"127.0.0.1:{port}"], "labels": {"namespace": "e2e", "pod": f"{job}-0"}}
                ],
            }
            for job, port in targets.items()
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    with (home / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                prometheus_path(),
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def ready() -> bool:
        assert process.poll() is None, (home / "prometheus.log").read_text()[-3000:]
        try:
            return client.get("/-/ready").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for_sync(ready, timeout=60, message="Prometheus ready")
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)
