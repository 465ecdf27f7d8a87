"""State-growth benchmark: RSS of the transcriber and the fetcher before and after many recordings went through them,
with ended recordings leaving their Tables, so the figure is memory the workers keep per recording by mistake.

The path is the real one (the stack of :mod:`bench.pipeline_stack`: a zero-latency simulator, ingest, the transcriber
and the fetcher as processes, the driver creating recordings in the simulator and following ``transcripts.ready``),
not events produced straight to the workers' input topics: the transcriber only ends a recording on the
``transcript.done`` of the transcript *it* created, and the fetcher only stores a transcript the simulator holds, so a
shortcut would either need a stand-in for ingest or leave the recordings unended (state the bounded-state mechanism
never sees leave). Each worker is measured on its own process, so ingest and the simulator cost time, not figures.

The mechanism under test is retention (docs/worker-core.md): ``TRANSCRIBER_RETENTION_SECONDS`` and
``FETCHER_RETENTION_SECONDS`` are set to ``retention_seconds`` (default 10 s) and both ``*_SWEEP_SECONDS`` to
``sweep_seconds`` (default 5 s). With the deployed 3 days every recording of the run would still be in the Table at
the end, by design (state bounded by retention x rate, not by the count); with a few seconds, an idle worker holds no
recording at all, so what RSS grew by after the warm-up is what the worker kept of recordings that left.

Per repetition, on a fresh stack:

1. warm-up: rounds of one recording per partition, then ``warmup`` recordings (default 5,000; ``--quick`` 300) in
   batches; wait until both Tables are empty (``transcriber_recordings`` and ``fetcher_transcripts`` sum to 0) and
   a few quiet seconds, then ``VmRSS`` of both workers: the baseline (the allocator's and faust's warm-up is in it);
2. ``recordings - warmup`` more (``recordings`` default 100,000; ``--quick`` 2,000) in batches of ``batch`` (1,000,
   the simulator reset between batches: its lookups are linear in what it holds), at most ``window`` in the pipeline;
3. idle again (both Tables empty, quiet seconds), ``VmRSS`` of both: the growth, normalised per 100,000 recordings
   (goal < 10 MiB each), and the Tables' sizes and expiries from each worker's ``/metrics``.

Every wait is bounded: a batch by ``batch_timeout`` after its last creation, the empty Tables by the retention plus
three sweeps plus a minute. Parameters (``--set state_growth.KEY=VALUE``): ``recordings``, ``warmup``, ``batch``,
``window``, ``concurrency``, ``words``, ``retention_seconds``, ``sweep_seconds``, ``settle_seconds``, ``log_level``
(the services', default WARNING: 100,000 recordings at INFO is gigabytes of log lines and CPU time, not memory),
``service_env`` (more environment for the services, ``A=1;B=2``), ``batch_timeout``, ``heap_probe`` (``1``: load
``bench/heap_probe`` into both workers, tracemalloc on from start-up, and read at both points besides RSS: RSS after
``malloc_trim`` and the traced live Python heap, tracemalloc snapshots kept in ``bench/results/heap-probe-*``;
slower, so off by default).
"""

from __future__ import annotations

import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.framework import BenchContext, Figure, Goal, Repetition, process_cpu_seconds, process_memory_kib
from bench.pipeline_stack import Stack, start_stack, warm_up

DESCRIPTION = (
    "transcriber and fetcher: RSS growth per 100k recordings through the zero-latency pipeline, ended recordings "
    "leaving the Tables after a short retention"
)

WORKERS = ("transcriber", "fetcher")

FIGURES = {
    **{
        f"{name}_{figure}": Figure(f"{name} {label}", unit, goal)
        for name in WORKERS
        for figure, label, unit, goal in (
            ("growth_mib_per_100k", "RSS growth per 100k recordings", "MiB", Goal("<", 10)),
            ("rss_base_mib", "RSS after the warm-up", "MiB", None),
            ("rss_end_mib", "RSS at the end, idle", "MiB", None),
            ("table_end", "Table at the end (entries)", "", None),
        )
    },
    "measured_recordings": Figure("recordings between the two RSS readings", ""),
    "recordings_per_second": Figure("rate of the measured part", "rec/s"),
    **{f"cpu_ms_per_rec_{name}": Figure(f"{name} CPU per recording", "ms") for name in WORKERS},
    "unfinished": Figure("recordings that never ended", ""),
    "transcriber_trimmed_growth_mib_per_100k": Figure("transcriber RSS growth after malloc_trim (heap_probe)", "MiB"),
    "fetcher_trimmed_growth_mib_per_100k": Figure("fetcher RSS growth after malloc_trim (heap_probe)", "MiB"),
    "transcriber_traced_growth_mib_per_100k": Figure("transcriber live Python heap growth (heap_probe)", "MiB"),
    "fetcher_traced_growth_mib_per_100k": Figure("fetcher live Python heap growth (heap_probe)", "MiB"),
}

WORKERS = ("transcriber", "fetcher")
#: The gauge of each worker's Table, by state (pipeline_common.metrics.WorkState).
TABLE_GAUGES = {"transcriber": "transcriber_recordings", "fetcher": "fetcher_transcripts"}
MIB = 1024.0


def _settings(ctx: BenchContext) -> dict[str, Any]:
    recordings = int(ctx.param("recordings", "2000" if ctx.quick else "100000"))
    warmup = int(ctx.param("warmup", "300" if ctx.quick else "5000"))
    if recordings <= warmup:
        raise ValueError(f"state_growth.recordings ({recordings}) must be more than state_growth.warmup ({warmup})")
    retention, sweep = float(ctx.param("retention_seconds", "10")), float(ctx.param("sweep_seconds", "5"))
    service_env = {
        "TRANSCRIBER_RETENTION_SECONDS": str(retention),
        "FETCHER_RETENTION_SECONDS": str(retention),
        "TRANSCRIBER_SWEEP_SECONDS": str(sweep),
        "FETCHER_SWEEP_SECONDS": str(sweep),
    }
    for pair in filter(None, (p.strip() for p in ctx.param("service_env", "").split(";"))):
        name, _, value = pair.partition("=")
        service_env[name.strip()] = value.strip()
    return {
        "recordings": recordings,
        "warmup": warmup,
        "batch": int(ctx.param("batch", "1000")),
        "window": int(ctx.param("window", "200")),
        "concurrency": int(ctx.param("concurrency", "16")),
        "words": int(ctx.param("words", "20")),
        "retention_seconds": retention,
        "sweep_seconds": sweep,
        "settle_seconds": float(ctx.param("settle_seconds", "5")),
        "batch_timeout": float(ctx.param("batch_timeout", "120")),
        "log_level": ctx.param("log_level", "WARNING"),
        "heap_probe": ctx.param("heap_probe", "0") not in ("0", "", "false"),
        "service_env": service_env,
    }


def scrape_gauges(url: str, prefixes: tuple[str, ...]) -> dict[str, float]:
    """Samples of a ``/metrics`` page whose name starts with one of ``prefixes`` (``name{labels}`` -> value)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a loopback URL we built
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return {}
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or " " not in line or not line.startswith(prefixes):
            continue
        series, _, raw = line.rpartition(" ")
        try:
            found[series] = float(raw)
        except ValueError:
            continue
    return found


def table_sizes(running: Stack) -> dict[str, dict[str, float]]:
    """Each worker's Table by state, its retry backlog and its expiries so far, from its own ``/metrics``."""
    sizes: dict[str, dict[str, float]] = {}
    for worker in WORKERS:
        gauge = TABLE_GAUGES[worker]
        samples = scrape_gauges(
            running.metrics_urls[worker], (f"{gauge}{{", f"{worker}_retry_backlog", f"{worker}_expired_total")
        )
        sizes[worker] = {key.removeprefix(gauge): value for key, value in samples.items()}
        sizes[worker]["total"] = sum(v for k, v in samples.items() if k.startswith(f"{gauge}{{"))
    return sizes


def wait_tables_empty(ctx: BenchContext, running: Stack, cfg: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Until every ended recording left both Tables (bounded: retention + three sweeps + a minute), then the quiet
    seconds; returns the last sizes seen (not empty when the bound ran out: the figure says so)."""
    deadline = time.monotonic() + cfg["retention_seconds"] + 3 * cfg["sweep_seconds"] + 60
    sizes = table_sizes(running)
    while any(sizes[w].get("total", 1) > 0 for w in WORKERS) and time.monotonic() < deadline:
        running.check_alive()
        time.sleep(1)
        sizes = table_sizes(running)
    if any(sizes[w].get("total", 1) > 0 for w in WORKERS):
        ctx.log(f"the Tables did not empty in time: {sizes}")
    time.sleep(cfg["settle_seconds"])
    return table_sizes(running)


def push(ctx: BenchContext, running: Stack, cfg: dict[str, Any], count: int, label: str) -> dict[str, int]:
    """``count`` recordings through the pipeline in batches; each batch waits until its recordings ended."""
    assert running.driver is not None
    totals = {"created": 0, "ready": 0, "failed": 0, "missing": 0, "create_errors": 0}
    started, done = time.monotonic(), 0
    while done < count:
        size = min(cfg["batch"], count - done)
        result = running.driver.run(
            timeout=cfg["batch_timeout"],
            count=size,
            concurrency=cfg["concurrency"],
            window=cfg["window"],
            words=cfg["words"],
            reset=True,
        )
        running.check_alive()
        for key in totals:
            totals[key] += int(result.get(key) or 0)
        done += size
        elapsed = time.monotonic() - started
        ctx.log(f"{label}: {done}/{count} ({done / elapsed:.1f}/s), missing so far {totals['missing']}")
        if result.get("missing") and result.get("ready", 0) + result.get("failed", 0) == 0:
            raise RuntimeError(f"{label}: a whole batch never ended: {result}")
    return totals


def rss_mib(running: Stack) -> dict[str, float]:
    found = {}
    for worker in WORKERS:
        kib = process_memory_kib(running.pids[worker])
        if kib is None:
            raise RuntimeError(f"{worker} is gone")
        found[worker] = kib / MIB
    return found


HEAP_PROBE = Path(__file__).parent / "heap_probe"
RESULTS = Path(__file__).parent / "results"


def with_heap_probe(cfg: dict[str, Any], directory: Path) -> dict[str, Any]:
    """``cfg`` with the heap probe loaded into the services (bench/heap_probe/sitecustomize.py)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = os.pathsep.join(filter(None, (str(HEAP_PROBE), os.environ.get("PYTHONPATH"))))
    env = {**cfg["service_env"], "PYTHONPATH": path, "BENCH_HEAP_PROBE_DIR": str(directory)}
    return {**cfg, "service_env": env}


def probe_heaps(running: Stack, directory: Path, taken: int) -> dict[str, dict[str, Any]]:
    """Have both workers' heap probes report (the ``taken``-th time); bounded wait for their files."""
    for worker in WORKERS:
        os.kill(running.pids[worker], signal.SIGRTMIN + 3)
    found: dict[str, dict[str, Any]] = {}
    deadline = time.monotonic() + 180
    while len(found) < len(WORKERS) and time.monotonic() < deadline:
        for worker in WORKERS:
            report = directory / f"{worker}-{taken}.json"
            if worker not in found and report.exists():
                found[worker] = json.loads(report.read_text())
        time.sleep(1)
    if len(found) < len(WORKERS):
        raise RuntimeError(f"the heap probe did not report in {directory} (have {sorted(found)})")
    return found


def heap_figures(base: dict[str, dict[str, Any]], end: dict[str, dict[str, Any]], per_100k: float) -> dict[str, Any]:
    figures = {}
    for worker in WORKERS:
        trimmed = (end[worker]["rss_trimmed_kib"] - base[worker]["rss_trimmed_kib"]) / MIB
        traced = (end[worker]["traced_bytes"] - base[worker]["traced_bytes"]) / MIB / MIB
        figures[f"{worker}_trimmed_growth_mib_per_100k"] = round(trimmed * per_100k, 2)
        figures[f"{worker}_traced_growth_mib_per_100k"] = round(traced * per_100k, 2)
    return figures


def one_repetition(ctx: BenchContext, bootstrap: str, cfg: dict[str, Any], repetition: int) -> Repetition:
    # Kept after the run (the work directory is not): bench/results is git-ignored.
    probes = RESULTS / f"heap-probe-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{repetition}"
    if cfg["heap_probe"]:
        cfg = with_heap_probe(cfg, probes)
    running = start_stack(ctx, bootstrap, cfg, repetition)
    try:
        warm = warm_up(ctx, running)
        warm_totals = push(ctx, running, cfg, cfg["warmup"], "warm-up")
        base_tables = wait_tables_empty(ctx, running, cfg)
        base = rss_mib(running)
        heap_base = probe_heaps(running, probes, 1) if cfg["heap_probe"] else None
        cpu0 = {w: process_cpu_seconds(running.pids[w]) for w in WORKERS}
        ctx.log(f"baseline RSS {base} MiB; Tables {base_tables}")
        measured = cfg["recordings"] - cfg["warmup"]
        started = time.monotonic()
        totals = push(ctx, running, cfg, measured, "measured")
        seconds = time.monotonic() - started
        cpu = {w: process_cpu_seconds(running.pids[w]) - cpu0[w] for w in WORKERS}
        end_tables = wait_tables_empty(ctx, running, cfg)
        end = rss_mib(running)
        heap_end = probe_heaps(running, probes, 2) if cfg["heap_probe"] else None
        ctx.log(f"end RSS {end} MiB; Tables {end_tables}; {measured} recordings in {seconds:.0f}s")
        per_100k = 100_000 / measured
        figures = {
            **{f"{w}_growth_mib_per_100k": round((end[w] - base[w]) * per_100k, 2) for w in WORKERS},
            **{f"{w}_rss_base_mib": round(base[w], 1) for w in WORKERS},
            **{f"{w}_rss_end_mib": round(end[w], 1) for w in WORKERS},
            "transcriber_table_end": end_tables["transcriber"].get("total"),
            "fetcher_table_end": end_tables["fetcher"].get("total"),
            "measured_recordings": measured,
            "recordings_per_second": round(totals["created"] / seconds, 1) if seconds > 0 else None,
            **{f"cpu_ms_per_rec_{w}": round(cpu[w] * 1000 / max(1, totals["created"]), 2) for w in WORKERS},
            "unfinished": warm_totals["missing"] + totals["missing"],
            **(heap_figures(heap_base, heap_end, per_100k) if heap_base and heap_end else {}),
        }
        detail = {
            "settings": cfg,
            "warm_up": warm,
            "warm_totals": warm_totals,
            "totals": totals,
            "seconds": round(seconds, 1),
            "tables_base": base_tables,
            "tables_end": end_tables,
            "heap_probe": {"dir": str(probes), "base": heap_base, "end": heap_end} if cfg["heap_probe"] else None,
        }
        return Repetition(figures=figures, detail=detail)
    finally:
        running.stop()


def run(ctx: BenchContext) -> Iterator[Repetition]:
    cfg = _settings(ctx)
    bootstrap = ctx.kafka_bootstrap()
    ctx.log(
        f"{cfg['recordings']} recordings ({cfg['warmup']} warm-up), retention {cfg['retention_seconds']}s, "
        f"sweep {cfg['sweep_seconds']}s"
    )
    for repetition in range(ctx.repeats):
        yield one_repetition(ctx, bootstrap, cfg, repetition)
