"""The stack the pipeline benchmark drives: the real processes on free ports (:mod:`devkit.stack`) around the
benchmark's own broker, with fresh consumer groups, and the driver process that creates recordings and follows
``transcripts.ready``."""

from __future__ import annotations

import contextlib
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.framework import BenchContext, JsonLineProcess, create_state_topics, listening_pid
from devkit import stack
from pipeline_common.topics import RECORDING_EVENTS

SERVICES = ("ingest", "transcriber", "fetcher")
SIM_ENV = {
    "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0",
    "RECALL_SIM_PROCESSING_WEBHOOKS": "false",
    "RECALL_SIM_WEBHOOK_EVENTS": "recording.done,transcript.done,transcript.failed",
    # Recall's retry schedule (5 s, 5 min, 30 min...) compressed 100x: a delivery that failed is retried within
    # seconds instead of stalling the run for minutes. Latency counts from the first attempt all the same.
    "RECALL_SIM_TIME_SCALE": "0.01",
    "LOG_LEVEL": "WARNING",
}
PARTITIONS = RECORDING_EVENTS.partitions  # and recall.transcript.events': the warm-up covers every partition


class Driver(JsonLineProcess):
    """``python -m bench.pipeline_driver`` in its own process: one JSON command in, one JSON answer out, with
    deadlines. It reads ``quit`` only between runs: a run in progress is killed after 5 s."""

    def __init__(self, bootstrap: str, sim_url: str, log_dir: Path) -> None:
        super().__init__(
            "pipeline driver",
            [sys.executable, "-m", "bench.pipeline_driver", bootstrap, sim_url],
            log_dir / "driver.log",
            hello_timeout=90,
            quit_timeout=5,
        )

    def run(self, timeout: float, **command: Any) -> dict[str, Any]:
        self.send({"op": "run", "timeout": timeout, **command})
        count, rate = int(command["count"]), command.get("rate")
        creating = count / float(rate) if rate else count / 20  # the answer comes after creating and waiting
        answer = self.next_answer(timeout=creating + timeout + 120)
        if answer.get("op") == "error":
            raise RuntimeError(f"pipeline driver failed: {answer['error']}")
        return answer


@dataclass
class Stack:
    """One started stack: its processes, their pids, and the driver."""

    profile: stack.Profile
    processes: list[stack.Process]
    pids: dict[str, int]
    metrics_urls: dict[str, str] = field(default_factory=dict)
    driver: Driver | None = None

    def check_alive(self) -> None:
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is not None:
                log = self.profile.logs / f"{process.name}.log"
                tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
                raise RuntimeError(f"{process.name} exited ({process.popen.returncode}); log {log}:\n{tail}")

    def stop(self) -> None:
        if self.driver is not None:
            self.driver.close()
        with contextlib.redirect_stdout(sys.stderr):
            stack.down(self.profile, keep_kafka=True)


def start_stack(ctx: BenchContext, bootstrap: str, cfg: dict[str, Any], repetition: int) -> Stack:
    @dataclass(frozen=True)
    class BenchProfile(stack.Profile):
        root: Path = Path()

        @property
        def home(self) -> Path:
            return self.root

    ports = stack.ephemeral_profile("bench")
    kafka_port = int(bootstrap.split(",")[0].rsplit(":", 1)[1])
    profile = BenchProfile(
        f"bench-pipeline-{repetition}",
        kafka_port,
        ports.sim_port,
        ports.ingest_port,
        ports.transcriber_port,
        ports.fetcher_port,
        root=ctx.work_dir / f"stack-{repetition}",
    )
    suffix = uuid.uuid4().hex[:8]
    processes = stack.processes(profile, sim_env=SIM_ENV)
    for process in processes:
        process.env["KAFKA_BOOTSTRAP_SERVERS"] = bootstrap
        if process.name in SERVICES:
            process.env["LOG_LEVEL"] = cfg["log_level"]
            process.env.update(cfg["service_env"])
        if process.name == "transcriber":
            process.env["TRANSCRIBER_APP_ID"] = f"bench-transcriber-{suffix}"
            process.env["TRANSCRIBER_AUTO_OFFSET_RESET"] = "latest"
        if process.name == "fetcher":
            process.env["FETCHER_APP_ID"] = f"bench-fetcher-{suffix}"
            process.env["FETCHER_AUTO_OFFSET_RESET"] = "latest"
    create_state_topics(bootstrap, {"transcriber": f"bench-transcriber-{suffix}", "fetcher": f"bench-fetcher-{suffix}"})
    started = Stack(profile, processes, {})
    try:
        with contextlib.redirect_stdout(sys.stderr):
            for process in processes:
                stack.start(profile, process)
            try:
                stack.wait_ready(profile, processes, timeout=180)
            except SystemExit as failed:  # the stack module's way to fail; the runner expects an Exception
                raise RuntimeError(str(failed)) from None
        started.pids = {process.name: process.popen.pid for process in processes}
        started.metrics_urls = {
            process.name: process.ready_url.rsplit("/", 1)[0] + "/metrics"
            for process in processes
            if process.name in SERVICES
        }
        broker = listening_pid(kafka_port)
        if broker is not None:
            started.pids["broker"] = broker
        started.driver = Driver(bootstrap, f"http://127.0.0.1:{profile.sim_port}", profile.home)
        started.pids["driver"] = started.driver.process.pid
    except BaseException:
        started.stop()
        raise
    return started


def warm_up(ctx: BenchContext, running: Stack) -> dict[str, Any]:
    """Rounds of recordings on every partition until one round comes out whole (every consumer positioned)."""
    assert running.driver is not None
    rounds = []
    for _ in range(8):
        result = running.driver.run(timeout=20, count=2 * PARTITIONS, cover_partitions=PARTITIONS, concurrency=4)
        running.check_alive()
        rounds.append({k: result[k] for k in ("created", "ready", "failed", "missing")})
        if result["created"] == 2 * PARTITIONS and result["missing"] == 0 and result["failed"] == 0:
            return {"rounds": rounds}
    raise RuntimeError(f"the pipeline did not deliver a whole warm-up round: {rounds}")
