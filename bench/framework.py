"""What a benchmark is, what it receives, and the small helpers the benchmarks share.

A benchmark is a module registered in ``bench/run.py``'s ``BENCHMARKS`` that defines:

``DESCRIPTION: str``
    one line for the table and the JSON file;
``FIGURES: dict[str, Figure]`` (optional)
    label, unit and goal of each figure it reports (a figure not listed is still reported, without unit or goal);
``def run(ctx: BenchContext) -> Iterator[Mapping[str, float] | Repetition]``
    a generator: set up, then yield the figures of ONE repetition ``ctx.repeats`` times, then tear down (in a
    ``finally``). The runner keeps every repetition and reports the median of each figure, so a comparison between
    two things (a ratio) must be computed inside one repetition, on figures measured in that same repetition.

The runner owns the Kafka broker (``ctx.kafka_bootstrap()`` starts one on first use unless
``KAFKA_BOOTSTRAP_SERVERS`` is set, and stops it at the end), a scratch directory per benchmark (``ctx.work_dir``),
``--quick`` (``ctx.quick``: shorter durations, one repetition) and ``--set NAME.KEY=VALUE`` (``ctx.param``).
"""

from __future__ import annotations

import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from devkit.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
__all__ = ["ROOT", "free_port"]  # free_port: the benchmarks import it from here with the rest

GoalOp = Literal[">=", ">", "<=", "<"]


@dataclass(frozen=True)
class Goal:
    op: GoalOp
    target: float

    def met(self, value: float) -> bool:
        return {
            ">=": value >= self.target,
            ">": value > self.target,
            "<=": value <= self.target,
            "<": value < self.target,
        }[self.op]

    def __str__(self) -> str:
        return f"{self.op} {self.target:g}"


@dataclass(frozen=True)
class Figure:
    label: str
    unit: str = ""
    goal: Goal | None = None


@dataclass
class Repetition:
    """The figures of one repetition, plus anything worth keeping in the JSON file (steps, raw samples...)."""

    figures: Mapping[str, float]
    detail: Mapping[str, Any] = field(default_factory=dict)


class KafkaProvider:
    """``KAFKA_BOOTSTRAP_SERVERS`` if set; else a dedicated local broker (scripts/kafka-local), started on first use."""

    def __init__(self, scratch: Path, log: Callable[[str], None]) -> None:
        self._scratch = scratch
        self._log = log
        self._broker: Any = None
        self.bootstrap: str | None = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or None
        self.origin = "env" if self.bootstrap else "none"

    def get(self) -> str:
        if self.bootstrap is not None:
            return self.bootstrap
        from tests.support.broker import Broker, free_port_pair  # the same recipe as the test suite's local broker

        port = free_port_pair()
        state_dir = Path(tempfile.mkdtemp(prefix="kafka-", dir=self._scratch))
        broker = Broker(bootstrap_servers=f"127.0.0.1:{port}", origin="local", state_dir=state_dir, port=port)
        self._log(f"starting a dedicated Kafka broker on 127.0.0.1:{port} (state in {state_dir})")
        broker.start()
        self._broker = broker
        self.bootstrap = broker.bootstrap_servers
        self.origin = "local"
        return self.bootstrap

    def close(self) -> None:
        if self._broker is not None:
            self._log("stopping the dedicated Kafka broker")
            try:
                self._broker.stop()
            finally:
                shutil.rmtree(self._broker.state_dir, ignore_errors=True)
                self._broker = None


@dataclass
class BenchContext:
    name: str
    quick: bool
    repeats: int
    work_dir: Path
    kafka: KafkaProvider
    params: Mapping[str, str] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def kafka_bootstrap(self) -> str:
        return self.kafka.get()

    def param(self, key: str, default: str) -> str:
        """``--set <benchmark>.<key>=<value>`` from the command line, else ``default``."""
        return self.params.get(key, default)


# ------------------------------------------------------------------------------------------------------ helpers


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of already sorted values; NaN when there are none."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


def process_cpu_split(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far; (0, 0) when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0, 0.0
    # Fields 14 and 15 of /proc/<pid>/stat (utime, stime), counted after the ")" that ends the command name.
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def process_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_split(pid))


def process_memory_kib(pid: int, field: str = "VmRSS") -> int | None:
    """A memory figure of a process from ``/proc/<pid>/status`` in KiB (``VmRSS`` resident now, ``VmHWM`` its peak);
    None when the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return None


def listening_pid(port: int) -> int | None:
    """The pid of the process listening on TCP ``port`` (e.g. the Kafka broker, to count its CPU), from /proc."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            rows = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            fields = row.split()
            if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    if not inodes:
        return None
    wanted = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) in wanted:
                    return int(entry.name)
        except OSError:
            continue
    return None


def create_state_topics(bootstrap: str, app_ids: Mapping[str, str]) -> None:
    """The faust Table changelog topic of each worker (``{"transcriber": app id, "fetcher": app id}``), created before
    the worker starts. A worker with an app id of its own declares this topic itself at start-up and may start
    consuming before the topic is in its metadata: its agent then crashes with ``PartitionsMismatch`` ("has 0
    partitions") until the supervisor gives up (bench/FINDINGS.md). The registry only has the default app ids'."""
    import asyncio
    import dataclasses

    from pipeline_common.kafka import connection_settings, ensure_topics
    from pipeline_common.topics import FETCHER_STATE, TRANSCRIBER_STATE

    defaults = {"transcriber": TRANSCRIBER_STATE, "fetcher": FETCHER_STATE}
    specs = [
        dataclasses.replace(defaults[service], name=f"{app_id}-recordings-changelog")
        for service, app_id in app_ids.items()
    ]
    asyncio.run(ensure_topics(connection_settings(bootstrap), specs))


def scrape_histograms(url: str) -> dict[str, dict[str, Any]]:
    """Every histogram a Prometheus ``/metrics`` page shows: ``{name{labels}: {"sum", "count", "buckets": {le:
    cumulative count}}}`` (empty when the page does not answer). A service's own timings (produce acks, Recall calls,
    downloads...) around a run: take one before and one after, and :func:`histogram_delta` the two."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL we built
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    found: dict[str, dict[str, Any]] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, _, raw = line.rpartition(" ")
        name, _, labels = series.partition("{")
        labels = labels.rstrip("}")
        for suffix in ("_sum", "_count", "_bucket"):
            if not name.endswith(suffix):
                continue
            pairs = [pair for pair in labels.split(",") if pair]
            le = next((pair.split("=", 1)[1].strip('"') for pair in pairs if pair.startswith("le=")), None)
            rest = ",".join(pair for pair in pairs if not pair.startswith("le="))
            key = name.removesuffix(suffix) + (f"{{{rest}}}" if rest else "")
            entry = found.setdefault(key, {"sum": 0.0, "count": 0.0, "buckets": {}})
            if suffix == "_bucket" and le is not None:
                entry["buckets"][float(le)] = float(raw)
            elif suffix != "_bucket":
                entry[suffix[1:]] = float(raw)
    return {key: entry for key, entry in found.items() if entry["buckets"]}


def histogram_delta(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any] | None:
    """Observations between two scrapes of one histogram: count, mean, and the bucket bound under which 50/99 % of
    them fell (an upper bound of the percentile, as fine as the buckets). None when nothing was observed."""
    old = before or {"sum": 0.0, "count": 0.0, "buckets": {}}
    count = after["count"] - old["count"]
    if count <= 0:
        return None
    bounds = sorted(after["buckets"])
    cumulative = [after["buckets"][b] - old["buckets"].get(b, 0.0) for b in bounds]

    def bound(q: float) -> float:
        return next((b for b, c in zip(bounds, cumulative, strict=True) if c >= q * count), math.inf)

    return {"count": int(count), "mean": (after["sum"] - old["sum"]) / count, "p50_at_most": bound(0.5),
            "p99_at_most": bound(0.99)}  # fmt: skip


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a loopback URL we built
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """A Python process of ours (``python -m ...`` or a script) with its output in a log file; stopped by its pid."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *argv],
                env={**os.environ, **env},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_http_ok(self, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; log: {self.log_path}")
            if http_ok(url):
                return
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready at {url} within {timeout:g} s; log: {self.log_path}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (from /proc; 0.0 where there is none)."""
        return process_cpu_seconds(self.pid)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 20.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class JsonLineProcess:
    """A helper process (the load generator, the pipeline driver) spoken to in JSON lines on stdin/stdout: it says
    ``{"op": "hello"}`` when ready, answers each command with one line, and leaves on ``{"op": "quit"}``. Every wait
    has a deadline; its stderr goes to ``<log_dir>/<log_name>``."""

    def __init__(
        self,
        what: str,
        argv: list[str],
        log_file: Path,
        *,
        hello_timeout: float,
        env: Mapping[str, str] | None = None,
        quit_timeout: float = 30,
    ) -> None:
        self.what = what
        self.quit_timeout = quit_timeout
        self._stderr = log_file.open("wb")
        self.process = subprocess.Popen(
            argv,
            env=dict(env) if env is not None else None,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name=f"{what}-reader", daemon=True).start()
        hello = self.next_answer(timeout=hello_timeout)
        if hello.get("op") != "hello":
            raise RuntimeError(f"{what} did not start: {hello}")

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, command: Mapping[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def next_answer(self, timeout: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"{self.what} gave no answer within {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"{self.what} exited ({self.process.poll()}); see {self._stderr.name}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        try:
            if self.process.poll() is None and self.process.stdin is not None:
                self.send({"op": "quit"})
                self.process.stdin.close()
                self.process.wait(timeout=self.quit_timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.process.kill()
            self.process.wait(timeout=10)
        finally:
            self._stderr.close()
