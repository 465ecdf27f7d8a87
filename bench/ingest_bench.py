"""Ingest benchmark: signed ``recording.done`` webhooks against ``python -m ingest`` and a verify-only baseline.

Both servers run as their own processes on 127.0.0.1 under the same uvicorn settings (uvloop, httptools): the real
service (``python -m ingest``: verify, parse, route, CloudEvents headers, de-duplication, metrics, JSON logs, and an
idempotent ``acks=all`` write that Kafka acknowledges before the 200) and ``bench/baseline_app.py`` (verify with the
same ``WebhookVerifier``, answer 200). The load comes from ``bench/loadgen.py`` in a third process.

Per repetition, for each server (the order alternates between repetitions):

1. a short discarded warm-up;
2. a closed-loop ramp at rising concurrency: the max sustained rate is the best requests/second of a step with zero
   errors; the ramp stops at the first step with an error or after ``flat_steps`` (2) steps in a row with less than
   ``min_gain`` (2 %) more throughput than the best step so far; a step over 20 % below the best is run once more
   before it counts (on a shared machine that is usually someone else's burst, and one bad step would otherwise end
   the ramp early and under-measure the max, and with it the 80 % rate);
3. an open-loop run at 80 % of that rate (fixed arrival rate, twice the best step's connections): p50/p99 latency.

The ratio ingest/baseline is computed inside each repetition. Parameters (``--set ingest.KEY=VALUE``):
``steps`` (comma-separated concurrencies), ``step_seconds``, ``rate_seconds``, ``event`` (default
``recording.done``; the smoke test routes ``audio_mixed.done`` to ``recall.other.events`` to keep the
session broker's recording topic quiet), ``log_level`` (ingest's ``LOG_LEVEL``, default INFO as deployed),
``min_gain``, ``flat_steps``, ``service_env`` (more environment for ingest, ``A=1;B=2``), ``compare_env`` (when set,
a second ingest with this environment, measured in the same repetitions: the ``variant_*`` figures), ``profile``
(default 1 in a full run, 0 with ``--quick``: after the last repetition's measurements, one more step per server at
its best concurrency with py-spy sampling it; see ``bench/profiling.py``; never a figure).
"""

from __future__ import annotations

import base64
import functools
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from bench.framework import (
    ROOT,
    BenchContext,
    Figure,
    Goal,
    Repetition,
    ServerProcess,
    free_port,
    histogram_delta,
    listening_pid,
    scrape_histograms,
)
from bench.ingest_targets import LoadGenerator, Target
from bench.profiling import SpyRecorder, format_summary, profiles_dir

DESCRIPTION = "signed recording.done webhooks: python -m ingest (Kafka, acks=all) vs a verify-only FastAPI baseline"

FIGURES = {
    "ingest_max_rps": Figure("ingest: max sustained rate, 0 errors", "req/s"),
    "baseline_max_rps": Figure("baseline: max sustained rate, 0 errors", "req/s"),
    "ratio_ingest_baseline": Figure("ingest / baseline max rate (same run)", "x", Goal(">=", 0.8)),
    "ingest_p50_ms": Figure("ingest p50 at 80 % of its max", "ms"),
    "ingest_p99_ms": Figure("ingest p99 at 80 % of its max", "ms", Goal("<", 25)),
    "baseline_p50_ms": Figure("baseline p50 at 80 % of its max", "ms"),
    "baseline_p99_ms": Figure("baseline p99 at 80 % of its max", "ms"),
    "ingest_p99_from_due_ms": Figure("ingest p99 at 80 %, from the due time", "ms"),
    "ingest_best_concurrency": Figure("ingest: connections at its max", ""),
    "baseline_best_concurrency": Figure("baseline: connections at its max", ""),
    "ingest_cpu_ms_per_req": Figure("ingest: server CPU per request at its max", "ms"),
    "baseline_cpu_ms_per_req": Figure("baseline: server CPU per request at its max", "ms"),
    "ratio_cpu_ingest_baseline": Figure("ingest / baseline CPU per request (same run)", "x"),
    "broker_cpu_ms_per_req": Figure("Kafka broker CPU per request at ingest's max", "ms"),
    "ingest_errors_at_80pct": Figure("ingest errors in the 80 % run", ""),
    "ingest_ack_mean_ms": Figure("ingest at 80 %: Kafka ack wait, mean (its /metrics)", "ms"),
    "ingest_ack_p99_at_most_ms": Figure("ingest at 80 %: Kafka ack wait p99, bucket bound", "ms"),
    "baseline_errors_at_80pct": Figure("baseline errors in the 80 % run", ""),
    "variant_max_rps": Figure("variant (compare_env): max sustained rate", "req/s"),
    "ratio_variant_baseline": Figure("variant / baseline max rate (same run)", "x"),
    "variant_p99_ms": Figure("variant p99 at 80 % of its max", "ms"),
    "variant_cpu_ms_per_req": Figure("variant: server CPU per request at its max", "ms"),
}

FULL = {"steps": "1,2,4,8,16,32,64,128,256", "step_seconds": "4", "rate_seconds": "8", "warmup": "1", "profile": "1"}
QUICK = {"steps": "4,16,64,128", "step_seconds": "1.5", "rate_seconds": "2", "warmup": "0.3", "profile": "0"}
PROFILE_SECONDS = 12.0
FALL_REPEAT = 0.2  # a step this far below the best so far is run once more before it counts
ACK_HISTOGRAM = "ingest_produce_latency_seconds"  # ingest's own time from produce to the broker's acknowledgement
PROFILE_LEAD_SECONDS = 3.0
POOL_RATE_FLOOR = 3000  # requests/second worth of signed requests prepared for a step, at least...
POOL_RATE_CAP = 20000  # ...and at most


def _env(text: str) -> dict[str, str]:
    """``A=1;B=2`` -> {"A": "1", "B": "2"}."""
    return dict(item.strip().split("=", 1) for item in text.split(";") if "=" in item)


def _settings(ctx: BenchContext) -> dict[str, Any]:
    defaults = QUICK if ctx.quick else FULL
    return {
        "steps": [int(c) for c in ctx.param("steps", defaults["steps"]).split(",") if c.strip()],
        "step_seconds": float(ctx.param("step_seconds", defaults["step_seconds"])),
        "rate_seconds": float(ctx.param("rate_seconds", defaults["rate_seconds"])),
        "warmup": float(ctx.param("warmup", defaults["warmup"])),
        "event": ctx.param("event", "recording.done"),
        "log_level": ctx.param("log_level", "INFO"),
        "min_gain": float(ctx.param("min_gain", "0.02")),
        "flat_steps": int(ctx.param("flat_steps", "2")),
        "service_env": _env(ctx.param("service_env", "")),
        "compare_env": _env(ctx.param("compare_env", "")),
        "profile": ctx.param("profile", defaults["profile"]) not in ("0", "false", "no", ""),
    }


def _step(
    ctx: BenchContext, gen: LoadGenerator, target: Target, cfg: dict[str, Any], concurrency: int, best: Any
) -> dict[str, Any]:
    """One closed-loop step at ``concurrency``, logged."""
    step_seconds = cfg["step_seconds"]
    per_second = min(max(3 * (best["rps"] if best else 0), POOL_RATE_FLOOR), POOL_RATE_CAP)
    result = target.drive(
        gen,
        target.command(
            "closed",
            cfg["event"],
            concurrency=concurrency,
            duration=step_seconds,
            warmup=min(cfg["warmup"], step_seconds / 3),
            max_requests=int(per_second * step_seconds),
        ),
        timeout=step_seconds + 120,
    )
    ctx.log(
        f"  {target.name:8} c={concurrency:<4} {result['rps']:>8.1f} req/s  p99 {result['p99_ms']} ms"
        f"  errors {result['error_count']}  server {result['server_cpu_ms_per_ok']} ms CPU/req"
        + (f"  broker {result['broker_cpu_ms_per_ok']} ms" if "broker_cpu_ms_per_ok" in result else "")
        + f"  loadgen {result['loadgen_cpu_s'] / max(result['elapsed_s'], 1e-9):.0%} CPU"
    )
    return result


def measure(ctx: BenchContext, gen: LoadGenerator, target: Target, cfg: dict[str, Any]) -> dict[str, Any]:
    """One ramp and one 80 % run against ``target``."""
    event, step_seconds = cfg["event"], cfg["step_seconds"]
    target.drive(
        gen,
        target.command("closed", event, concurrency=8, duration=min(1.0, step_seconds), warmup=0, max_requests=5000),
        timeout=120,
    )
    steps: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    stop_reason = "last step"
    flat = 0  # consecutive steps without a gain over the best
    for concurrency in cfg["steps"]:
        result = _step(ctx, gen, target, cfg, concurrency, best)
        steps.append(result)
        if not result["error_count"] and best is not None and result["rps"] < best["rps"] * (1 - FALL_REPEAT):
            # A fall this steep is a neighbour's burst on the shared machine more often than a real limit: once more.
            ctx.log(
                f"  {target.name:8} c={concurrency}: {result['rps']:.0f} req/s is over {FALL_REPEAT:.0%} below "
                f"the best ({best['rps']:.0f}); repeating the step"
            )
            result = _step(ctx, gen, target, cfg, concurrency, best)
            result["repeated"] = True
            steps.append(result)
        if result["error_count"]:
            stop_reason = f"errors at concurrency {concurrency}: {result['errors']}"
            break
        if best is not None and result["rps"] < best["rps"] * (1 + cfg["min_gain"]):
            if result["rps"] > best["rps"]:
                best = result
            flat += 1
            if flat >= cfg["flat_steps"]:
                stop_reason = f"no throughput gain in {flat} steps, the last at concurrency {concurrency}"
                break
            continue
        best, flat = result, 0
    if best is None or best["rps"] <= 0:
        raise RuntimeError(f"{target.name}: no step without errors ({stop_reason}); log {target.server.log_path}")
    rate = 0.8 * best["rps"]
    connections = min(max(2 * best["concurrency"], 4), 512)
    metrics_url = f"http://127.0.0.1:{target.port}/metrics"
    metrics_before = scrape_histograms(metrics_url)
    loaded = target.drive(
        gen,
        target.command(
            "rate",
            event,
            rate=rate,
            connections=connections,
            duration=cfg["rate_seconds"],
            warmup=min(cfg["warmup"], cfg["rate_seconds"] / 3),
        ),
        timeout=cfg["rate_seconds"] + 120,
    )
    ack_series = scrape_histograms(metrics_url).get(ACK_HISTOGRAM)
    ack = histogram_delta(metrics_before.get(ACK_HISTOGRAM), ack_series) if ack_series else None
    loaded["kafka_ack"] = ack
    ctx.log(
        f"  {target.name:8} 80 % = {rate:.0f} req/s over {connections} connections: p50 {loaded['p50_ms']} ms,"
        f" p99 {loaded['p99_ms']} ms, errors {loaded['error_count']}"
        + (f"; Kafka ack mean {1000 * ack['mean']:.1f} ms, p99 <= {1000 * ack['p99_at_most']:g} ms" if ack else "")
    )
    return {"max_rps": best["rps"], "best": best, "steps": steps, "stop_reason": stop_reason, "at_80pct": loaded}


def _drive_into(
    box: dict[str, Any], gen: LoadGenerator, target: Target, command: dict[str, Any], timeout: float
) -> None:
    try:
        box["result"] = target.drive(gen, command, timeout=timeout)
    except Exception as error:
        box["error"] = repr(error)


def profile(
    ctx: BenchContext, gen: LoadGenerator, targets: list[Target], measured: dict[str, Any], cfg: dict[str, Any]
) -> dict[str, Any]:
    """Where each server's time goes at its max: one more closed-loop step at its best concurrency with py-spy
    sampling the server (``bench/profiling.py``) once the load generator has signed its requests and is sending.
    Never part of a figure."""
    out_dir = profiles_dir("ingest")
    found: dict[str, Any] = {"dir": str(out_dir)}
    for target in targets:
        best = measured[target.name]["best"]
        per_second = min(max(3 * best["rps"], POOL_RATE_FLOOR), POOL_RATE_CAP)
        duration = PROFILE_SECONDS + PROFILE_LEAD_SECONDS + 1
        command = target.command(
            "closed",
            cfg["event"],
            concurrency=best["concurrency"],
            duration=duration,
            warmup=0,
            max_requests=int(per_second * duration),
        )
        box: dict[str, Any] = {}
        drive = functools.partial(_drive_into, box, gen, target, command, duration + 120)
        thread = threading.Thread(target=drive, name=f"profile-{target.name}", daemon=True)
        thread.start()
        time.sleep(PROFILE_LEAD_SECONDS)  # signing the requests comes first; sample while they are sent
        recorder = SpyRecorder(target.server.pid, target.name, out_dir, PROFILE_SECONDS)
        summary = recorder.finish()
        thread.join(timeout=duration + 180)
        result = box.get("result", {})
        summary["load"] = {k: result.get(k) for k in ("concurrency", "rps", "p99_ms", "server_cpu_ms_per_ok")}
        summary["load_error"] = box.get("error")
        ctx.log(format_summary(summary))
        found[target.name] = summary
    return found


def _figures(measured: dict[str, Any]) -> dict[str, Any]:
    ing, base = measured["ingest"], measured["baseline"]
    figures = {
        "ingest_max_rps": ing["max_rps"],
        "baseline_max_rps": base["max_rps"],
        "ratio_ingest_baseline": round(ing["max_rps"] / base["max_rps"], 3),
        "ingest_p50_ms": ing["at_80pct"]["p50_ms"],
        "ingest_p99_ms": ing["at_80pct"]["p99_ms"],
        "baseline_p50_ms": base["at_80pct"]["p50_ms"],
        "baseline_p99_ms": base["at_80pct"]["p99_ms"],
        "ingest_p99_from_due_ms": ing["at_80pct"]["p99_from_due_ms"],
        "ingest_best_concurrency": ing["best"]["concurrency"],
        "baseline_best_concurrency": base["best"]["concurrency"],
        "ingest_cpu_ms_per_req": ing["best"]["server_cpu_ms_per_ok"],
        "baseline_cpu_ms_per_req": base["best"]["server_cpu_ms_per_ok"],
        "ratio_cpu_ingest_baseline": round(
            ing["best"]["server_cpu_ms_per_ok"] / base["best"]["server_cpu_ms_per_ok"], 3
        ),
        **(
            {"broker_cpu_ms_per_req": ing["best"]["broker_cpu_ms_per_ok"]}
            if "broker_cpu_ms_per_ok" in ing["best"]
            else {}
        ),
        "ingest_errors_at_80pct": ing["at_80pct"]["error_count"],
        **(
            {
                "ingest_ack_mean_ms": round(1000 * ing["at_80pct"]["kafka_ack"]["mean"], 2),
                "ingest_ack_p99_at_most_ms": 1000 * ing["at_80pct"]["kafka_ack"]["p99_at_most"],
            }
            if ing["at_80pct"].get("kafka_ack")
            else {}
        ),
        "baseline_errors_at_80pct": base["at_80pct"]["error_count"],
    }
    variant = measured.get("variant")
    if variant is not None:  # the same figures for ingest with compare_env, in the same repetition
        figures["variant_max_rps"] = variant["max_rps"]
        figures["ratio_variant_baseline"] = round(variant["max_rps"] / base["max_rps"], 3)
        figures["variant_p99_ms"] = variant["at_80pct"]["p99_ms"]
        figures["variant_cpu_ms_per_req"] = variant["best"]["server_cpu_ms_per_ok"]
    return figures


def run(ctx: BenchContext) -> Iterator[Repetition]:
    cfg = _settings(ctx)
    bootstrap = ctx.kafka_bootstrap()
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
    started: list[Any] = []
    try:
        ingest_port, baseline_port = free_port(), free_port()

        def ingest_process(name: str, port: int, env: dict[str, str]) -> ServerProcess:
            server = ServerProcess(
                name,
                ["-m", "ingest"],
                {
                    "RECALL_WEBHOOK_SECRET": secret,
                    "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                    "INGEST_HOST": "127.0.0.1",
                    "INGEST_PORT": str(port),
                    "LOG_LEVEL": cfg["log_level"],
                    **env,
                },
                ctx.work_dir,
            )
            started.append(server)
            return server

        ingest = ingest_process("ingest", ingest_port, cfg["service_env"])
        variant = variant_port = None
        if cfg["compare_env"]:
            variant_port = free_port()
            variant = ingest_process("variant", variant_port, cfg["compare_env"])
        baseline = ServerProcess(
            "baseline",
            [str(ROOT / "bench" / "baseline_app.py")],
            {"RECALL_WEBHOOK_SECRET": secret, "BASELINE_HOST": "127.0.0.1", "BASELINE_PORT": str(baseline_port)},
            ctx.work_dir,
        )
        started.append(baseline)
        gen = LoadGenerator(secret, ctx.work_dir)
        started.append(gen)
        baseline.wait_http_ok(f"http://127.0.0.1:{baseline_port}/readyz", timeout=60)
        ingest.wait_http_ok(f"http://127.0.0.1:{ingest_port}/readyz", timeout=120)
        broker_pid = listening_pid(int(bootstrap.split(",")[0].rsplit(":", 1)[1]))
        targets = [Target("baseline", baseline, baseline_port), Target("ingest", ingest, ingest_port, broker_pid)]
        if variant is not None and variant_port is not None:
            variant.wait_http_ok(f"http://127.0.0.1:{variant_port}/readyz", timeout=120)
            targets.append(Target("variant", variant, variant_port, broker_pid))
        ctx.log(f"ingest (pid {ingest.pid}) and baseline (pid {baseline.pid}) ready; broker {bootstrap}")

        for repetition in range(ctx.repeats):
            order = targets if repetition % 2 == 0 else targets[::-1]
            ctx.log(f"repetition {repetition + 1}/{ctx.repeats}: {' then '.join(t.name for t in order)}")
            measured = {target.name: measure(ctx, gen, target, cfg) for target in order}
            figures = _figures(measured)
            detail: dict[str, Any] = {
                "order": [t.name for t in order],
                "settings": {**cfg, "steps": cfg["steps"]},
                "broker": bootstrap,
                **measured,
            }
            if cfg["profile"] and repetition == ctx.repeats - 1:  # before the last yield: the runner stops there
                detail["profile"] = profile(ctx, gen, order, measured, cfg)
            yield Repetition(figures=figures, detail=detail)
    finally:
        for thing in reversed(started):  # each one stopped even if another one fails to stop
            try:
                if isinstance(thing, LoadGenerator):
                    thing.close()
                else:
                    thing.stop()
            except Exception as error:
                ctx.log(f"could not stop {thing}: {error!r}")
