"""Where the time goes: sample a running service with py-spy (by pid, every thread, no change to the service).

    recorder = SpyRecorder(pid, "ingest", out_dir, seconds=8)   # starts ``py-spy record`` in the background
    ...drive load...
    summary = recorder.finish()                                # waits for it, then summarises the samples

py-spy (a dev dependency) writes the raw collapsed stacks (``frame;frame;... count``) to ``<out_dir>/<name>.txt``;
:func:`summarise` turns them into the few tables worth reading: the share of samples per package of the innermost
frame (where the CPU is actually spent: aiokafka, faust, pydantic, our code...), the top functions by self time, and
the top functions by inclusive time (on the stack at all).

Only the thread holding the GIL is sampled (``--gil``): py-spy's idle detection does not recognise an asyncio loop
waiting in ``epoll`` or a thread-pool worker waiting for work, so without it most samples of a lightly loaded service
are idle ones. The shares are therefore of the Python time of the process, and ``busy_share`` (samples per wall-clock
tick) is how much of the time some thread of it was running Python. What happens in the kernel with the GIL released
(socket writes over loopback, fsync) is not in the profile: compare with the process's system CPU share from /proc.

py-spy pauses the process for each sample (a few tens of microseconds, 100 times a second): consistent stacks
for about 1 % of its time. Profiling is best-effort: when py-spy is missing or may not attach (no ptrace
permission), the summary says so and the benchmark goes on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

RATE_HZ = 100
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter (the project's venv), else on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class SpyRecorder:
    """``py-spy record`` against ``pid`` for ``seconds``, started now, in the background."""

    def __init__(self, pid: int, name: str, out_dir: Path, seconds: float, rate: int = RATE_HZ) -> None:
        self.pid = pid
        self.name = name
        self.seconds = seconds
        self.rate = rate
        out_dir.mkdir(parents=True, exist_ok=True)
        self.raw_path = out_dir / f"{name}.txt"
        self.log_path = out_dir / f"{name}.py-spy.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.problem: str | None = None
        executable = py_spy()
        if executable is None:
            self.problem = "py-spy is not installed (uv sync --all-packages installs the dev group)"
            return
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    executable,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(max(1, round(seconds))),
                    "--rate",
                    str(rate),
                    "--format",
                    "raw",
                    "--gil",
                    "--output",
                    str(self.raw_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.started = time.monotonic()

    def finish(self, top: int = 12) -> dict[str, Any]:
        """Wait for py-spy (bounded), then summarise; a dict with ``error`` when there is nothing to summarise."""
        if self.process is not None:
            try:
                self.process.wait(timeout=self.seconds + 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
                self.problem = "py-spy did not finish in time"
            if self.process.returncode not in (0, None) and not self.raw_path.exists():
                tail = self.log_path.read_text(errors="replace")[-500:] if self.log_path.exists() else ""
                self.problem = f"py-spy exited {self.process.returncode}: {tail.strip()}"
        if self.problem is not None:
            return {"process": self.name, "pid": self.pid, "error": self.problem}
        if not self.raw_path.exists():
            return {"process": self.name, "pid": self.pid, "error": "py-spy wrote no samples"}
        summary = summarise(self.raw_path.read_text(errors="replace"), top=top)
        ticks = self.seconds * self.rate
        summary.update(
            process=self.name,
            pid=self.pid,
            seconds=self.seconds,
            busy_share=round(summary["samples"] / ticks, 3) if ticks else None,
            raw=str(self.raw_path),
        )
        return summary

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def _parse_frame(frame: str) -> tuple[str, str]:
    """``function (path/file.py:123)`` -> (``function``, ``path/file.py``)."""
    match = _FRAME.match(frame.strip())
    if match is None:
        return frame.strip(), ""
    return match.group("function"), match.group("file")


def package_of(file: str) -> str:
    """The top-level package a frame's file belongs to, as py-spy prints paths (relative to ``sys.path``)."""
    if not file:
        return "?"
    path = file.replace("\\", "/")
    for marker in ("/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/lib/python3":
                path = path.split("/", 1)[1] if "/" in path else path
    if path.startswith("<"):
        return path  # <frozen ...>, <string>
    first = path.lstrip("/").split("/", 1)[0]
    return first.removesuffix(".py") or "?"


def summarise(raw: str, top: int = 12) -> dict[str, Any]:
    """Shares of samples: per package of the innermost frame, per function (self), per function (inclusive)."""
    by_package: Counter[str] = Counter()
    by_self: Counter[str] = Counter()
    by_inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_parse_frame(frame) for frame in stack.split(";") if frame.strip()]
        if not frames:
            continue
        total += count
        function, file = frames[-1]
        by_package[package_of(file)] += count
        by_self[f"{function} ({file})"] += count
        for label in {f"{fn} ({fl})" for fn, fl in frames}:
            by_inclusive[label] += count

    def shares(counter: Counter[str]) -> list[list[Any]]:
        return [[label, round(count / total, 3)] for label, count in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "by_package": shares(by_package),
        "top_self": shares(by_self),
        "top_inclusive": shares(by_inclusive),
    }


def format_summary(summary: dict[str, Any], lines: int = 8) -> str:
    """A few readable lines for the log."""
    if "error" in summary:
        return f"{summary.get('process')}: profile unavailable: {summary['error']}"
    packages = ", ".join(f"{name} {share:.0%}" for name, share in summary["by_package"][:lines])
    selfs = "\n      ".join(f"{share:>5.1%}  {label}" for label, share in summary["top_self"][:lines])
    return (
        f"{summary['process']} (pid {summary['pid']}): {summary['samples']} samples, busy {summary['busy_share']:.0%}"
        f"\n    by package: {packages}\n    top self:\n      {selfs}"
    )


def profiles_dir(benchmark: str) -> Path:
    """Where a benchmark keeps its raw profiles: ``bench/results/profiles/<benchmark>-<UTC>/`` (git-ignored)."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    path = Path(__file__).resolve().parent / "results" / "profiles" / f"{benchmark}-{stamp}-{os.getpid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path
