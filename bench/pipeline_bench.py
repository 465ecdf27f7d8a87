"""Pipeline benchmark: recordings through the whole system, the real processes, and each service's idle RSS.

Per repetition a fresh stack is started with :mod:`devkit.stack` (``processes``/``start``/``wait_ready``/``down``, as
``make up`` and the demo run it) on free loopback ports, against the benchmark's broker: the Recall simulator at zero
latency (``RECALL_SIM_TRANSCRIPT_DELAY_SECONDS=0``, no ``transcript.processing`` webhooks, small transcripts, its own
logging at WARNING since it stands in for Recall), ``python -m ingest``, ``python -m transcriber`` and ``python -m
fetcher`` at ``LOG_LEVEL=INFO`` as deployed, each worker in a consumer group of its own that starts at the end of the
topics (other benchmarks' events stay unread). ``bench/pipeline_driver.py`` runs in a process of its own: it creates
the recordings through the simulator's admin API (the simulator then sends the signed ``recording.done`` webhook to
ingest, answers the transcriber's create, sends ``transcript.done``, serves the fetcher's retrieve and download) and
consumes ``transcripts.ready``/``transcripts.failed`` like a downstream service.

1. warm-up: rounds of one recording per partition until a whole round comes out (every consumer is positioned);
2. idle RSS of each service (``VmRSS`` from /proc) after a few quiet seconds;
3. burst: ``count`` recordings (default 2000) created as fast as ``concurrency`` connections allow while fewer than
   ``window`` (200) are in the pipeline (so the pipeline, not the simulator's webhook queue, is what saturates); the
   sustained rate is the recordings ended divided by the time from the first ``recording.done`` webhook sent to the
   last ``transcripts.ready`` consumed; CPU seconds per recording of every process (broker and simulator included) from
   /proc, and how busy the whole machine was (other jobs show up there);
4. paced: at 80 % of that rate (``rate`` to fix it) for at most ``paced_seconds``: latency of each recording from its
   ``recording.done`` webhook's first send (the simulator's record) to its ``transcripts.ready`` consumed, p50/p95/p99;
5. RSS after the load, peak RSS (``VmHWM``).

With ``profile=1`` (default in a full run, never counted in the figures) one more burst runs after the last
repetition's measurements with py-spy sampling ingest, transcriber, fetcher and the simulator (see
``bench/profiling.py``); the summaries land in the JSON file's detail and the raw stacks in
``bench/results/profiles/``.

Parameters (``--set pipeline.KEY=VALUE``): ``count``, ``concurrency``, ``window``, ``rate``, ``paced_seconds``,
``words`` (per transcript), ``log_level`` (the services'), ``service_env`` (more environment for the three services,
e.g. ``FETCHER_CONCURRENCY=8;TRANSCRIBER_RETRY_SCAN_SECONDS=2``), ``profile``, ``profile_seconds``,
``settle_seconds``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.framework import (
    BenchContext,
    Figure,
    Goal,
    Repetition,
    histogram_delta,
    process_cpu_seconds,
    process_cpu_split,
    process_memory_kib,
    scrape_histograms,
)
from bench.pipeline_stack import SERVICES, Stack, start_stack, warm_up
from bench.profiling import SpyRecorder, format_summary, profiles_dir

DESCRIPTION = (
    "recordings through simulator -> ingest -> transcriber -> fetcher (real processes, zero-latency simulator): "
    "sustained rate, end-to-end latency, idle RSS"
)

FIGURES = {
    "recordings_per_second": Figure("burst: sustained rate, recording.done -> ready", "rec/s", Goal(">=", 100)),
    "paced_rate": Figure("paced run: recordings/second offered (80 % of burst)", "rec/s"),
    "p50_ms": Figure("paced: latency p50, webhook sent -> ready consumed", "ms"),
    "p95_ms": Figure("paced: latency p95", "ms"),
    "p99_ms": Figure("paced: latency p99", "ms", Goal("<", 1000)),
    "paced_achieved_rate": Figure("paced: recordings/second achieved", "rec/s"),
    "burst_p99_ms": Figure("burst: latency p99 (queueing included)", "ms"),
    **{f"{name}_idle_rss_mib": Figure(f"{name} idle RSS after warm-up", "MiB", Goal("<", 120)) for name in SERVICES},
    **{f"{name}_rss_after_mib": Figure(f"{name} RSS after the load", "MiB") for name in SERVICES},
    **{
        f"cpu_ms_per_rec_{name}": Figure(f"burst: {label} CPU per recording", "ms")
        for name, label in (
            *((name, name) for name in SERVICES),
            ("recall_sim", "simulator"),
            ("broker", "Kafka broker"),
            ("driver", "driver"),
        )
    },
    "machine_busy_cores": Figure("burst: whole machine busy (all processes)", "cores"),
    "others_busy_cores": Figure("burst: busy outside this benchmark", "cores"),
    "unfinished": Figure("recordings that never ended (both runs)", ""),
    "webhooks_retried": Figure("recording.done webhooks the simulator had to retry", ""),
}

FULL = {"count": "2000", "paced_seconds": "30", "profile": "1"}
QUICK = {"count": "300", "paced_seconds": "8", "profile": "0"}


def _timings(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Each histogram of a service over a run: count, mean and bucket bounds of p50/p99 (ms for seconds)."""
    found: dict[str, Any] = {}
    for key, entry in after.items():
        delta = histogram_delta(before.get(key), entry)
        if delta is None:
            continue
        scale = 1000 if "_seconds" in key else 1
        found[key] = {
            "count": delta["count"],
            "mean": round(delta["mean"] * scale, 2),
            "p50_at_most": delta["p50_at_most"] * scale,
            "p99_at_most": delta["p99_at_most"] * scale,
            "unit": "ms" if scale == 1000 else "",
        }
    return found


def _machine_busy_seconds() -> tuple[float, float]:
    """(busy CPU seconds of the whole machine, wall clock) from /proc/stat, to tell other jobs' load apart."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return 0.0, time.monotonic()
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), time.monotonic()


def _settings(ctx: BenchContext) -> dict[str, Any]:
    defaults = QUICK if ctx.quick else FULL
    rate = ctx.param("rate", "")
    return {
        "count": int(ctx.param("count", defaults["count"])),
        "concurrency": int(ctx.param("concurrency", "16")),
        "window": int(ctx.param("window", "200")),
        "rate": float(rate) if rate else None,
        "paced_seconds": float(ctx.param("paced_seconds", defaults["paced_seconds"])),
        "words": int(ctx.param("words", "50")),
        "log_level": ctx.param("log_level", "INFO"),
        "profile": ctx.param("profile", defaults["profile"]) not in ("0", "false", "no", ""),
        "profile_seconds": float(ctx.param("profile_seconds", "10")),
        "settle_seconds": float(ctx.param("settle_seconds", "3")),
        # Extra environment for the three services, ";"-separated: FETCHER_CONCURRENCY=8;LOG_LEVEL=WARNING
        "service_env": dict(
            item.split("=", 1) for item in ctx.param("service_env", "").split(";") if "=" in item.strip()
        ),
    }


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    kib = process_memory_kib(pid, field)
    return round(kib / 1024, 1) if kib is not None else None


def measured_run(running: Stack, timeout: float, **command: Any) -> dict[str, Any]:
    """One driver run with every process's CPU time and the machine's busy time around it."""
    assert running.driver is not None
    cpu_before = {name: process_cpu_seconds(pid) for name, pid in running.pids.items()}
    split_before = {name: process_cpu_split(pid) for name, pid in running.pids.items()}
    metrics_before = {name: scrape_histograms(url) for name, url in running.metrics_urls.items()}
    busy_before, wall_before = _machine_busy_seconds()
    result = running.driver.run(timeout=timeout, **command)
    busy_after, wall_after = _machine_busy_seconds()
    running.check_alive()
    result["service_timings"] = {
        name: _timings(metrics_before[name], scrape_histograms(url)) for name, url in running.metrics_urls.items()
    }
    result["cpu_system_share"] = {}
    for name, pid in running.pids.items():
        now = process_cpu_split(pid)
        user, system = (after - before for after, before in zip(now, split_before[name], strict=True))
        if user + system > 0:
            result["cpu_system_share"][name] = round(system / (user + system), 2)
    ended = max(1, result["ready"] + result["failed"])
    cpu = {name: process_cpu_seconds(pid) - cpu_before[name] for name, pid in running.pids.items()}
    wall = max(wall_after - wall_before, 1e-9)
    result["cpu_seconds"] = {name: round(seconds, 2) for name, seconds in cpu.items()}
    result["cpu_ms_per_recording"] = {name: round(1000 * seconds / ended, 3) for name, seconds in cpu.items()}
    result["machine_busy_cores"] = round((busy_after - busy_before) / wall, 2)
    result["ours_busy_cores"] = round(sum(cpu.values()) / wall, 2)
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result


def burst_run(running: Stack, cfg: dict[str, Any], count: int) -> dict[str, Any]:
    """``count`` recordings created as fast as the driver's concurrency and window allow."""
    return measured_run(
        running,
        timeout=60 + count / 5,
        reset=True,
        count=count,
        concurrency=cfg["concurrency"],
        window=cfg["window"],
        words=cfg["words"],
    )


def profile_burst(ctx: BenchContext, running: Stack, cfg: dict[str, Any], rate: float) -> dict[str, Any]:
    """One extra burst with py-spy on the services and the simulator; not part of any figure."""
    assert running.driver is not None
    seconds = cfg["profile_seconds"]
    count = int(min(cfg["count"], max(200, rate * (seconds + 4))))
    out_dir = profiles_dir("pipeline")
    targets = [name for name in (*SERVICES, "recall_sim") if name in running.pids]
    ctx.log(f"profiling a burst of {count} with py-spy for {seconds:g} s: {', '.join(targets)} (raw in {out_dir})")
    # The driver needs a moment to start creating: begin sampling when the load is there.
    recorders: list[SpyRecorder] = []
    result_box: dict[str, Any] = {}

    def drive() -> None:
        try:
            result_box["result"] = burst_run(running, cfg, count)
        except Exception as error:
            result_box["error"] = repr(error)

    thread = threading.Thread(target=drive, name="profile-burst", daemon=True)
    thread.start()
    time.sleep(1.5)
    recorders = [SpyRecorder(running.pids[name], name, out_dir, seconds) for name in targets]
    summaries = [recorder.finish() for recorder in recorders]
    thread.join(timeout=60 + count / 5 + 180)
    for summary in summaries:
        ctx.log(format_summary(summary))
    return {"count": count, "dir": str(out_dir), "run": result_box, "profiles": summaries}


def run(ctx: BenchContext) -> Iterator[Repetition]:
    cfg = _settings(ctx)
    bootstrap = ctx.kafka_bootstrap()
    for repetition in range(ctx.repeats):
        ctx.log(f"repetition {repetition + 1}/{ctx.repeats}: starting the stack")
        running = start_stack(ctx, bootstrap, cfg, repetition)
        try:
            ctx.log(f"stack ready: {running.pids}")
            warm = warm_up(ctx, running)
            time.sleep(cfg["settle_seconds"])
            idle = {name: rss_mib(running.pids[name]) for name in (*SERVICES, "recall_sim")}
            ctx.log(f"idle RSS (MiB): {idle}; warm-up rounds {len(warm['rounds'])}")

            count = cfg["count"]
            burst = burst_run(running, cfg, count)
            ctx.log(
                f"burst: {burst['ready']}/{count} ready, {burst['failed']} failed, {burst['missing']} missing in "
                f"{burst['span_seconds']} s = {burst['recordings_per_second']} rec/s (created at "
                f"{burst['create_rate']}/s); CPU ms/rec {burst['cpu_ms_per_recording']}; machine busy "
                f"{burst['machine_busy_cores']} cores, ours {burst['ours_busy_cores']}"
            )
            rate = cfg["rate"] or max(1.0, round(0.8 * (burst["recordings_per_second"] or 1.0), 1))
            paced_count = int(min(count, max(10, rate * cfg["paced_seconds"])))
            paced = measured_run(
                running,
                timeout=60 + paced_count / 5,
                reset=True,
                count=paced_count,
                rate=rate,
                concurrency=256,
                words=cfg["words"],
            )
            ctx.log(
                f"paced at {rate:g}/s: {paced['ready']}/{paced_count} ready, latency ms {paced['latency_ms']}, "
                f"achieved {paced['recordings_per_second']} rec/s, create lag p99 {paced['create_lag_p99_ms']} ms"
            )
            after = {name: rss_mib(running.pids[name]) for name in (*SERVICES, "recall_sim")}
            peak = {name: rss_mib(running.pids[name], "VmHWM") for name in (*SERVICES, "recall_sim")}
            ctx.log(f"RSS after the load (MiB): {after}; peak {peak}")

            figures: dict[str, float | None] = {
                "recordings_per_second": burst["recordings_per_second"],
                "paced_rate": rate,
                "p50_ms": paced["latency_ms"]["p50"],
                "p95_ms": paced["latency_ms"]["p95"],
                "p99_ms": paced["latency_ms"]["p99"],
                "paced_achieved_rate": paced["recordings_per_second"],
                "burst_p99_ms": burst["latency_ms"]["p99"],
                "unfinished": burst["missing"] + paced["missing"],
                "webhooks_retried": burst["webhooks_retried"] + paced["webhooks_retried"],
                "machine_busy_cores": burst["machine_busy_cores"],
                "others_busy_cores": round(max(0.0, burst["machine_busy_cores"] - burst["ours_busy_cores"]), 2),
            }
            for name in SERVICES:
                figures[f"{name}_idle_rss_mib"] = idle[name]
                figures[f"{name}_rss_after_mib"] = after[name]
            for name, value in burst["cpu_ms_per_recording"].items():
                figures[f"cpu_ms_per_rec_{name}"] = value
            detail: dict[str, Any] = {
                "settings": cfg,
                "pids": running.pids,
                "warm_up": warm,
                "idle_rss_mib": idle,
                "rss_after_mib": after,
                "peak_rss_mib": peak,
                "burst": burst,
                "paced": paced,
            }
            if cfg["profile"] and repetition == ctx.repeats - 1:
                detail["profile"] = profile_burst(ctx, running, cfg, burst["recordings_per_second"] or 10.0)
        finally:
            running.stop()
        yield Repetition(figures={k: v for k, v in figures.items() if v is not None}, detail=detail)
