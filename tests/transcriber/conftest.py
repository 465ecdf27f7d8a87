"""The transcriber as it runs: a worker process, a real broker, the Recall simulator, and the real ingest service
in front of Kafka so that the simulator's webhooks travel the production path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from ingest.app import create_app as create_ingest
from tests.ingest.conftest import ingest_settings
from tests.support.broker import ROOT
from tests.support.http import free_port, serve_in_thread
from tests.support.recall_sim import TEST_WEBHOOK_SECRET, RunningSim, run_recall_sim, sim_settings
from tests.support.waiting import wait_for_sync

CHAIN = [{"recallai_async": {"language_code": "auto"}}, {"deepgram_async": {"model": "nova-3", "language": "multi"}}]


@dataclass
class Worker:
    env: dict[str, str]
    log_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, wait: bool = True) -> None:
        self.starts += 1
        log = self.log_dir / f"transcriber-{self.starts}.log"
        self.logs.append(log)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "transcriber"],
            cwd=ROOT,
            env=self.env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        if wait:
            wait_for_sync(self.ready, timeout=90, interval=0.25, message="transcriber ready")

    def ready(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.tail()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)

    def state(self, recording_id: str) -> dict[str, Any] | None:
        response = httpx.get(f"{self.url}/recordings/{recording_id}", timeout=5)
        return response.json() if response.status_code == 200 else None

    def wait_status(self, recording_id: str, status: str, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            state = self.state(recording_id)
            return state if state is not None and state["status"] == status else None

        try:
            return wait_for_sync(reached, timeout=timeout, interval=0.2, message=f"{recording_id} {status}")
        except AssertionError:
            raise AssertionError(
                f"{recording_id} never reached {status}: {self.state(recording_id)}\n{self.tail()}"
            ) from None

    def metric(self, name: str) -> str:
        return "\n".join(line for line in httpx.get(f"{self.url}/metrics").text.splitlines() if line.startswith(name))

    def tail(self) -> str:
        return "\n".join(log.read_text(errors="replace")[-4000:] for log in self.logs[-1:])


@dataclass
class Pipeline:
    sim: RunningSim
    ingest_url: str
    worker: Worker
    bootstrap: str

    async def create_transcript_calls(self, recording_id: str) -> list[dict[str, Any]]:
        calls = await self.sim.admin.calls(endpoint="create_transcript")
        return [c for c in calls if c["recording_id"] == recording_id]


def worker_env(bootstrap: str, sim: RunningSim, unique: str, port: int, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "KAFKA_", "TRANSCRIBER_"))}
    return {
        **env,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RECALL_API_BASE_URL": sim.base_url,
        "RECALL_API_KEY": sim.api_key,
        "RECALL_API_TIMEOUT_SECONDS": "5",
        "TRANSCRIBER_PROVIDERS": json.dumps(CHAIN),
        "TRANSCRIBER_APP_ID": f"transcriber-{unique}",
        "TRANSCRIBER_WEB_HOST": "127.0.0.1",
        "TRANSCRIBER_WEB_PORT": str(port),
        "TRANSCRIBER_DATA_DIR": str(tmp / "data"),
        "TRANSCRIBER_RETRY_BASE_SECONDS": "0.2",
        "TRANSCRIBER_RETRY_MAX_SECONDS": "2",
        "TRANSCRIBER_OPERATOR_RETRY_SECONDS": "1",
        "TRANSCRIBER_RETRY_SCAN_SECONDS": "0.2",
        "LOG_LEVEL": "INFO",
        # The pipeline topics are shared by the whole session: a fresh group starts at the end, not at other tests'
        # history (which would also consume the faults a test injects).
        "TRANSCRIBER_AUTO_OFFSET_RESET": "latest",
        **extra,
    }


def warm_up(sim: RunningSim, worker: Worker) -> None:
    """With "latest", a partition's start position is fixed at the first fetch after assignment: until a sentinel
    recording has gone all the way through, an event could land before that position and be skipped."""
    for _ in range(10):
        response = httpx.post(f"{sim.base_url}/admin/recordings", json={"metadata": {"sentinel": True}})
        response.raise_for_status()
        try:
            worker.wait_status(response.json()["id"], "done", timeout=10)
            return
        except AssertionError:
            continue
    raise AssertionError("no sentinel recording made it through the transcriber")


@pytest.fixture
def pipeline(kafka_bootstrap: str, unique: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Pipeline]:
    marker = request.node.get_closest_marker("worker_env")
    extra: dict[str, str] = marker.kwargs if marker else {}
    settings = sim_settings(recall_sim_transcript_delay_seconds=0.2, recall_sim_webhook_secret=[TEST_WEBHOOK_SECRET])
    with run_recall_sim(settings) as sim:
        ingest = create_ingest(ingest_settings(kafka_bootstrap, recall_webhook_secret=[TEST_WEBHOOK_SECRET]))
        with serve_in_thread(ingest) as ingest_url:
            wait_for_sync(lambda: httpx.get(f"{ingest_url}/readyz").status_code == 200, timeout=60, message="ingest")
            httpx.patch(f"{sim.base_url}/admin/config", json={"webhook_url": f"{ingest_url}/webhooks/recall"})
            worker = Worker(worker_env(kafka_bootstrap, sim, unique, free_port(), tmp_path, **extra), tmp_path, 0)
            worker.port = int(worker.env["TRANSCRIBER_WEB_PORT"])
            worker.start()
            warm_up(sim, worker)
            try:
                yield Pipeline(sim=sim, ingest_url=ingest_url, worker=worker, bootstrap=kafka_bootstrap)
            finally:
                worker.kill()
