"""``make bench``: run the registered benchmarks, print a table, write every figure to ``bench/results/<UTC>.json``.

    python -m bench.run [--quick] [--only ingest,fetcher] [--repeats N] [--set ingest.steps=4,16] [--results-dir D]

Each figure is the median of ``--repeats`` repetitions (default 3; ``--quick``: 1, with shorter durations); every
comparison is a ratio measured inside one repetition. The JSON file also records the machine (cores, CPU model,
memory, load average), the versions (Python, aiokafka, faust, Kafka, ...) and the git commit, because these machines
are shared and noisy and a figure means little without them.

Kafka: ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a dedicated broker from ``scripts/kafka-local`` on free loopback ports
with a temporary state directory, started when a benchmark first asks for it and stopped at the end.

Adding a benchmark: write ``bench/<name>_bench.py`` with ``run(ctx)`` (see ``bench/framework.py``) and add it to
``BENCHMARKS`` below. A module that is missing or defines no ``run`` yet is listed as skipped, not an error.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.framework import ROOT, BenchContext, Figure, KafkaProvider, Repetition

#: name -> module. Order is run order. A module without ``run(ctx)`` (or not there at all) is skipped.
BENCHMARKS: dict[str, str] = {
    "ingest": "bench.ingest_bench",
    "fetcher": "bench.fetcher_bench",
    "pipeline": "bench.pipeline_bench",
    "state_growth": "bench.state_growth_bench",
}

VERSIONED_PACKAGES = ("aiokafka", "faust-streaming", "fastapi", "uvicorn", "uvloop", "httptools", "pydantic")


# ------------------------------------------------------------------------------------------------ machine facts


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def machine() -> dict[str, Any]:
    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in _read("/proc/cpuinfo").splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or None,
    )
    mem_kib = re.search(r"^MemTotal:\s+(\d+) kB", _read("/proc/meminfo"), re.MULTILINE)
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu_count": os.cpu_count(),
        "cpus_usable": affinity,
        "cpu_model": cpu_model,
        "memory_total_bytes": int(mem_kib.group(1)) * 1024 if mem_kib else None,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def kafka_version() -> str | None:
    if os.environ.get("KAFKA_VERSION"):
        return os.environ["KAFKA_VERSION"]
    pinned = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", _read(str(ROOT / "scripts" / "kafka" / "pom.xml")))
    return pinned.group(1).strip() if pinned else None


def versions() -> dict[str, Any]:
    found: dict[str, Any] = {"python": platform.python_version(), "kafka": kafka_version()}
    for package in VERSIONED_PACKAGES:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    return found


def git() -> dict[str, Any]:
    def out(*args: str) -> str | None:
        try:
            result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return result.stdout.strip() if result.returncode == 0 else None

    status = out("status", "--porcelain")
    return {"commit": out("rev-parse", "HEAD"), "dirty": bool(status) if status is not None else None}


# --------------------------------------------------------------------------------------------------- the runner


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def summarise(module: Any, repetitions: list[Repetition]) -> dict[str, Any]:
    described: Mapping[str, Figure] = getattr(module, "FIGURES", {})
    names = list(described)
    for rep in repetitions:
        names += [name for name in rep.figures if name not in names]
    figures: dict[str, Any] = {}
    for name in names:
        runs = [_number(rep.figures.get(name)) for rep in repetitions]
        values = [v for v in runs if v is not None]
        meta = described.get(name, Figure(name))
        median = statistics.median(values) if values else None
        figures[name] = {
            "median": median,
            "runs": runs,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "label": meta.label,
            "unit": meta.unit,
            "goal": str(meta.goal) if meta.goal else None,
            "goal_met": meta.goal.met(median) if meta.goal and median is not None else None,
        }
    return figures


def run_one(
    name: str, module_name: str, args: argparse.Namespace, kafka: KafkaProvider, scratch: Path
) -> dict[str, Any]:
    entry: dict[str, Any] = {"module": module_name}
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as missing:
        if missing.name == module_name:
            return {**entry, "status": "skipped", "reason": f"{module_name} does not exist"}
        raise
    if not callable(getattr(module, "run", None)):
        return {**entry, "status": "skipped", "reason": f"{module_name} defines no run(ctx) yet"}
    entry["description"] = getattr(module, "DESCRIPTION", "")
    work_dir = scratch / name
    work_dir.mkdir()
    prefix = f"{name}."
    ctx = BenchContext(
        name=name,
        quick=args.quick,
        repeats=args.repeats,
        work_dir=work_dir,
        kafka=kafka,
        params={k.removeprefix(prefix): v for k, v in args.params.items() if k.startswith(prefix)},
        log=lambda message: log(f"[{name}] {message}"),
    )
    repetitions: list[Repetition] = []
    started = time.monotonic()
    generator = module.run(ctx)
    try:
        for produced in generator:
            rep = produced if isinstance(produced, Repetition) else Repetition(figures=dict(produced))
            repetitions.append(rep)
            if len(repetitions) >= args.repeats:
                break
    finally:
        generator.close()  # runs the benchmark's teardown even when we stop early or it raised
    if not repetitions:
        raise RuntimeError(f"{name} produced no repetition")
    return {
        **entry,
        "status": "ok",
        "seconds": round(time.monotonic() - started, 1),
        "repetitions": len(repetitions),
        "figures": summarise(module, repetitions),
        "detail": [rep.detail for rep in repetitions],
    }


def log(message: str) -> None:
    print(f"{datetime.now().strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    if value == int(value) and abs(value) >= 10:
        return f"{int(value)}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    m, v = report["machine"], report["versions"]
    title = (
        f"make bench · {report['started_at']} · {m['cpu_count']} cores {m['cpu_model']} · "
        f"{(m['memory_total_bytes'] or 0) / 2**30:.0f} GiB · Python {v['python']} · Kafka {v['kafka']} · "
        f"aiokafka {v['aiokafka']} · faust {v['faust-streaming']} · "
        f"{report['repeats']} repetition(s), median shown"
    )
    table = Table(title=title, title_justify="left")
    for column, justify in (
        ("benchmark", "left"),
        ("figure", "left"),
        ("median", "right"),
        ("runs", "right"),
        ("unit", "left"),
        ("goal", "left"),
        ("", "left"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for name, result in report["benchmarks"].items():
        if result["status"] != "ok":
            table.add_row(name, f"[yellow]{result['status']}[/]: {result.get('reason', '')}", "", "", "", "", "")
            continue
        for row, figure in enumerate(result["figures"].values()):
            met = figure["goal_met"]
            mark = "" if met is None else ("[green]met[/]" if met else "[red]missed[/]")
            runs = " ".join(fmt(r) for r in figure["runs"]) if len(figure["runs"]) > 1 else ""
            table.add_row(
                name if row == 0 else "",
                figure["label"],
                fmt(figure["median"]),
                runs,
                figure["unit"],
                figure["goal"] or "",
                mark,
            )
        table.add_section()
    # Not a terminal (make's output piped or captured): wide enough that labels do not wrap.
    Console(width=None if sys.stdout.isatty() else 140).print(table)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repetition, shorter durations")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--repeats", type=int, default=None, help="repetitions per figure (default 3, quick 1)")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    parser.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="NAME.KEY=VALUE",
        help="a benchmark parameter, e.g. ingest.steps=4,16,64 (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    selected = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in selected if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; registered: {', '.join(BENCHMARKS)}")
    args.selected = selected
    args.params = {}
    for item in args.sets:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            parser.error(f"--set wants NAME.KEY=VALUE, got {item!r}")
        args.params[key.strip()] = value
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = datetime.now(UTC)
    report: dict[str, Any] = {
        "started_at": started.isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "repeats": args.repeats,
        "argv": sys.argv[1:] if argv is None else argv,
        "machine": machine(),
        "versions": versions(),
        "git": git(),
        "benchmarks": {},
    }
    scratch = Path(tempfile.mkdtemp(prefix="bench-"))
    kafka = KafkaProvider(scratch, lambda message: log(f"[kafka] {message}"))
    failed = False
    try:
        for name in args.selected:
            log(f"[{name}] starting")
            try:
                result = run_one(name, BENCHMARKS[name], args, kafka, scratch)
            except Exception as error:
                failed = True
                log(f"[{name}] FAILED: {error!r} (logs kept in {scratch / name})")
                result = {"module": BENCHMARKS[name], "status": "failed", "reason": repr(error)}
                result["traceback"] = traceback.format_exc()
            if result["status"] == "skipped":
                log(f"[{name}] skipped: {result['reason']}")
            report["benchmarks"][name] = result
    finally:
        report["kafka"] = {"bootstrap_servers": kafka.bootstrap, "origin": kafka.origin}
        kafka.close()
        if not failed:
            shutil.rmtree(scratch, ignore_errors=True)
    report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    report["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    path = args.results_dir / f"{stamp}.json"
    suffix = 1
    while path.exists():
        path, suffix = args.results_dir / f"{stamp}-{suffix}.json", suffix + 1
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print_table(report)
    print(f"figures written to {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
