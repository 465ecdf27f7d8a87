"""Where the fetcher's memory goes for one large transcript: its own validate-and-render code, step by step.

Runs what ``fetcher.fetch.TranscriptFetcher`` does between the download and the store, with the same functions
(``fetcher.transcript.analyse``, then ``render_one`` for each rendition, one at a time), on a transcript generated
by the simulator's generator, in this process. Prints one JSON object: for each step, the peak of Python
allocations during it and what was still held after it (``tracemalloc``), the top allocation sites at the end of
the analysis (what the compact form is made of), and this process's RSS high-water mark in a run without
tracemalloc (the same figure the benchmark reads for the service).

    .venv/bin/python bench/fetcher_memory_probe.py [BYTES]     # default 50 MB
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def vm_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def generate(path: Path, size: int) -> None:
    from recall_sim.generator import TranscriptSpec, generate_transcript

    data = generate_transcript(
        "memory-probe", TranscriptSpec(target_bytes=size), default_words=400, default_bytes=None, empty=False,
        started_at=datetime.now(UTC),
    )  # fmt: skip
    path.write_bytes(data)


def steps(path: Path, traced: bool) -> dict[str, Any]:
    from fetcher.transcript import RENDERERS, analyse, render_one

    report: dict[str, Any] = {"steps": []}
    mib = 1024 * 1024

    def step(name: str, started: float) -> None:
        entry: dict[str, Any] = {"step": name, "seconds": round(time.perf_counter() - started, 2)}
        if traced:
            current, peak = tracemalloc.get_traced_memory()
            entry.update(held_mib=round(current / mib, 1), peak_mib=round(peak / mib, 1))
            tracemalloc.reset_peak()
        entry["rss_mib"] = round(vm_kib("VmRSS") / 1024, 1)
        entry["hwm_mib"] = round(vm_kib("VmHWM") / 1024, 1)
        report["steps"].append(entry)

    started = time.perf_counter()
    analysis = analyse(path)
    step("analyse (validate, compact form)", started)
    if traced:
        snapshot = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
        report["held_after_analyse_by_line"] = [
            [str(stat.traceback[0]), round(stat.size / mib, 1), stat.count]
            for stat in snapshot.statistics("lineno")[:8]
        ]
    report["words"] = analysis.word_count
    report["parts"] = len(analysis.parts)
    for name in RENDERERS:
        started = time.perf_counter()
        data = render_one(analysis, name)
        size = len(data)
        del data
        step(f"render {name} ({size / 1e6:.1f} MB)", started)
    return report


def main() -> int:
    size = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 50_000_000
    if len(sys.argv) > 2:  # the child: one measured run, traced or not
        path, traced = Path(sys.argv[2]), sys.argv[3] == "traced"
        baseline = vm_kib("VmRSS")
        if traced:
            tracemalloc.start(1)
        report = steps(path, traced)
        report["rss_before_mib"] = round(baseline / 1024, 1)
        print(json.dumps(report))
        return 0
    with tempfile.TemporaryDirectory(prefix="fetcher-memory-") as scratch:
        path = Path(scratch) / "transcript.json"
        generate(path, size)
        runs = {}
        for mode in ("plain", "traced"):
            done = subprocess.run(
                [sys.executable, __file__, str(size), str(path), mode], capture_output=True, text=True, timeout=900
            )
            if done.returncode != 0:
                print(json.dumps({"error": done.stderr[-2000:]}))
                return 1
            runs[mode] = json.loads(done.stdout)
    print(json.dumps({"bytes": size, **runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
