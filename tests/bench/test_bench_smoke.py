"""`make bench` still runs: the ingest benchmark in its quickest form against the session broker, and the pipeline
benchmark in its quickest form on a broker of its own.

Asserts the shape of the result file and that every figure is a positive number, never how fast anything is (the
machine is shared; speed is for `make bench` to report, not for CI to guard).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.broker import Broker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
POSITIVE = ("ingest_max_rps", "baseline_max_rps", "ratio_ingest_baseline", "ingest_p50_ms", "ingest_p99_ms")
POSITIVE += ("baseline_p50_ms", "baseline_p99_ms", "ingest_best_concurrency", "baseline_best_concurrency")


def test_quick_ingest_benchmark_writes_its_figures(kafka_bootstrap: str, tmp_path: Path) -> None:
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap}
    command = [sys.executable, "-m", "bench.run", "--quick", "--only", "ingest"]
    command += ["--results-dir", str(tmp_path)]
    # Shortest useful ramp; audio_mixed.done is routed to recall.other.events, which no test reads from its start.
    for setting in ("steps=4,16", "step_seconds=1", "rate_seconds=1", "warmup=0.2", "event=audio_mixed.done"):
        command += ["--set", f"ingest.{setting}"]
    finished = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    [written] = list(tmp_path.glob("*.json"))
    report = json.loads(written.read_text())
    assert {"started_at", "finished_at", "machine", "versions", "git", "kafka", "benchmarks"} <= report.keys()
    assert report["machine"]["cpu_count"] >= 1
    assert report["machine"]["memory_total_bytes"] > 0
    assert {"python", "aiokafka", "faust-streaming", "kafka"} <= report["versions"].keys()
    assert report["versions"]["kafka"]
    assert report["kafka"]["bootstrap_servers"] == kafka_bootstrap

    ingest = report["benchmarks"]["ingest"]
    assert ingest["status"] == "ok"
    assert ingest["repetitions"] == 1
    figures = ingest["figures"]
    for name in POSITIVE:
        assert figures[name]["median"] > 0, (name, figures[name])
    assert figures["ingest_errors_at_80pct"]["median"] >= 0
    assert figures["ratio_ingest_baseline"]["goal"] == ">= 0.8"
    assert figures["ingest_p99_ms"]["goal"] == "< 25"
    detail = ingest["detail"][0]
    assert detail["ingest"]["steps"] and detail["baseline"]["steps"]
    assert "ingest / baseline" in finished.stdout  # the table was printed


def test_quick_pipeline_benchmark_writes_its_figures(kafka_broker: Broker, tmp_path: Path) -> None:
    """The whole stack once, briefly, on a broker of its own (its recordings stay off the session broker's topics)."""
    if kafka_broker.origin != "local":
        pytest.skip("needs the local Kafka jars (scripts/kafka-local) for a dedicated broker")
    env = {k: v for k, v in os.environ.items() if k != "KAFKA_BOOTSTRAP_SERVERS"}
    command = [sys.executable, "-m", "bench.run", "--quick", "--only", "pipeline"]
    command += ["--results-dir", str(tmp_path)]
    for setting in ("count=30", "paced_seconds=2", "settle_seconds=0.5"):
        command += ["--set", f"pipeline.{setting}"]
    finished = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=150)
    assert finished.returncode == 0, finished.stdout + finished.stderr

    [written] = list(tmp_path.glob("*.json"))
    pipeline = json.loads(written.read_text())["benchmarks"]["pipeline"]
    assert pipeline["status"] == "ok"
    figures = pipeline["figures"]
    for name in ("recordings_per_second", "p50_ms", "p99_ms", "ingest_idle_rss_mib", "fetcher_idle_rss_mib"):
        assert figures[name]["median"] > 0, (name, figures[name])
    assert figures["transcriber_idle_rss_mib"]["goal"] == "< 120"
    assert figures["recordings_per_second"]["goal"] == ">= 100"
    assert figures["unfinished"]["median"] == 0
    burst = pipeline["detail"][0]["burst"]
    assert burst["ready"] == 30 and burst["failed"] == 0
    assert burst["cpu_ms_per_recording"]["fetcher"] > 0
