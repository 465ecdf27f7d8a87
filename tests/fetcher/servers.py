"""Processes and servers for the fetcher's tests and benchmark: a real S3-compatible server (moto's standalone
server) on loopback, the fetcher worker as a subprocess, and a download proxy that can cut or stall a response
mid-body."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from devkit.ports import free_port
from pipeline_common.topics import dlq_topic
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for_sync

ROOT = Path(__file__).resolve().parents[2]
DLQ = dlq_topic("fetcher").name
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


# --- S3 ------------------------------------------------------------------------------------------------------------


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's standalone S3-compatible server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@contextmanager
def aws_credentials() -> Iterator[None]:
    """Dummy credentials for boto3 (moto accepts any); restores the environment afterwards."""
    saved = {name: os.environ.get(name) for name in AWS_ENV}
    os.environ.update(AWS_ENV)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def create_bucket(endpoint_url: str, bucket: str) -> None:
    import boto3

    client = boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_bucket(Bucket=bucket)
    client.close()


# --- the worker ----------------------------------------------------------------------------------------------------


@dataclass
class FetcherWorker:
    """``python -m fetcher`` as a subprocess (so it can be SIGKILLed), with its log in a file."""

    env: dict[str, str]
    log_dir: Path
    name: str = "fetcher"
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def port(self) -> int:
        return int(self.env["FETCHER_WEB_PORT"])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}-{self.starts}.log"

    def start(self, **overrides: str) -> FetcherWorker:
        self.starts += 1
        env = {**self.env, **overrides}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "fetcher"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )
        return self

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return ""

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout: float = 90) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"fetcher exited during start-up:\n{self.log_tail()}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for_sync(ready, timeout=timeout, interval=0.2, message="fetcher ready")

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, timeout: float = 60) -> int | None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode if self.process else None

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)

    def recording(self, recording_id: str) -> dict[str, Any] | None:
        response = self.get(f"/recordings/{recording_id}")
        return response.json() if response.status_code == 200 else None

    def transcript_state(self, recording_id: str, transcript_id: str) -> dict[str, Any] | None:
        doc = self.recording(recording_id) or {"transcripts": []}
        return next((t for t in doc["transcripts"] if t["transcript_id"] == transcript_id), None)

    def metrics(self) -> str:
        return self.get("/metrics").text


def worker_env(
    *,
    bootstrap: str,
    sim: RunningSim,
    store_url: str,
    app_id: str,
    data_dir: Path,
    **extra: str,
) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "RECALL_API_BASE_URL": sim.base_url,
        "RECALL_API_KEY": sim.api_key,
        "TRANSCRIPT_STORE_URL": store_url,
        "FETCHER_APP_ID": app_id,
        "FETCHER_DATA_DIR": str(data_dir),
        "FETCHER_WEB_HOST": "127.0.0.1",
        "FETCHER_WEB_PORT": str(free_port()),
        # The pipeline's topics are shared by the whole test session: start at their end, never replay others' events.
        "FETCHER_AUTO_OFFSET_RESET": "latest",
        "FETCHER_SESSION_TIMEOUT_SECONDS": "10",
        "FETCHER_RETRY_BASE_SECONDS": "0.2",
        "FETCHER_RETRY_MAX_SECONDS": "1",
        "FETCHER_RETRY_SCAN_SECONDS": "0.1",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        **AWS_ENV,
    }
    env.update(extra)
    return env


# --- a proxy in front of the simulator's download URLs --------------------------------------------------------------


@dataclass
class DownloadProxy:
    """Forwards GETs to the simulator; can cut the next responses mid-body, stall them mid-body, or replace the
    body. Point download URLs at it with the simulator's ``public_url``."""

    upstream: str
    cut_next: int = 0
    stall_next: int = 0
    replace_body: bytes | None = None
    requests: list[str] = field(default_factory=list)
    stalled: int = 0
    release: threading.Event = field(default_factory=threading.Event)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def localhost_url(self) -> str:
        return f"http://localhost:{self.port}"

    def reset(self) -> None:
        self.cut_next = self.stall_next = 0
        self.replace_body = None
        self.release.set()
        self.release = threading.Event()

    @contextmanager
    def running(self) -> Iterator[DownloadProxy]:
        proxy = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                upstream = httpx.get(proxy.upstream + self.path, timeout=60)
                body = upstream.content
                with lock:
                    proxy.requests.append(self.path.split("?")[0])
                    mode = "pass"
                    if proxy.cut_next:
                        proxy.cut_next -= 1
                        mode = "cut"
                    elif proxy.stall_next:
                        proxy.stall_next -= 1
                        mode = "stall"
                    if proxy.replace_body is not None and upstream.status_code == 200:
                        body = proxy.replace_body
                self.send_response(upstream.status_code)
                self.send_header("Content-Type", upstream.headers.get("content-type", "application/json"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if mode == "pass":
                    self.wfile.write(body)
                    self.wfile.flush()
                    return
                self.wfile.write(body[: max(1, len(body) // 2)])
                self.wfile.flush()
                if mode == "stall":
                    with lock:
                        proxy.stalled += 1
                    proxy.release.wait(timeout=120)
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.release.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)
