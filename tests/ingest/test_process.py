"""``python -m ingest`` as a platform team runs it: start-up errors, Kafka unreachable at start, SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from tests.ingest.conftest import SECRET, recording_done, signed
from tests.support.http import free_port
from tests.support.waiting import wait_for_sync

pytestmark = pytest.mark.integration


def ingest_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "KAFKA_", "INGEST_"))}
    return {**env, "LOG_FORMAT": "json", **overrides}


def run_to_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ingest"], env=env, capture_output=True, text=True, timeout=60)


def test_missing_secret_fails_start_up_naming_the_variable() -> None:
    result = run_to_exit(ingest_env())
    assert result.returncode == 2
    assert "RECALL_WEBHOOK_SECRET: Field required" in result.stderr


def test_a_secret_without_whsec_prefix_fails_start_up_without_echoing_it() -> None:
    result = run_to_exit(ingest_env(RECALL_WEBHOOK_SECRET="v1,c2VjcmV0LXZhbHVl"))
    assert result.returncode == 2
    assert "RECALL_WEBHOOK_SECRET: entry 1 does not start with 'whsec_'" in result.stderr
    assert "c2VjcmV0LXZhbHVl" not in result.stderr


def test_a_secret_that_is_not_base64_fails_start_up() -> None:
    result = run_to_exit(ingest_env(RECALL_WEBHOOK_SECRET="whsec_not base64!"))
    assert result.returncode == 2
    assert "not base64" in result.stderr


def test_bad_port_fails_start_up() -> None:
    result = run_to_exit(ingest_env(RECALL_WEBHOOK_SECRET=SECRET, INGEST_PORT="http"))
    assert result.returncode == 2
    assert "INGEST_PORT: Input should be a valid integer" in result.stderr


@pytest.fixture
def started() -> Iterator[object]:
    processes: list[subprocess.Popen[str]] = []

    def start(**env: str) -> tuple[subprocess.Popen[str], str]:
        port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", "ingest"],
            env=ingest_env(RECALL_WEBHOOK_SECRET=SECRET, INGEST_HOST="127.0.0.1", INGEST_PORT=str(port), **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"

        def alive() -> bool:
            assert process.poll() is None, process.communicate()[0][-3000:]
            try:
                return httpx.get(f"{url}/healthz").status_code == 200
            except httpx.TransportError:
                return False

        wait_for_sync(alive, timeout=30, message="ingest process serving")
        return process, url

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_unreachable_kafka_at_start_is_not_ready_and_does_not_crash(started) -> None:  # type: ignore[no-untyped-def]
    process, url = started(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}", INGEST_READINESS_INTERVAL_SECONDS="0.2")
    readiness = httpx.get(f"{url}/readyz")
    assert readiness.status_code == 503
    assert readiness.json()["status"] == "not_ready"
    body = recording_done()
    response = httpx.post(f"{url}/webhooks/recall", content=body, headers=signed(body), timeout=30)
    assert response.status_code == 503
    assert response.headers["retry-after"]
    scraped = httpx.get(f"{url}/metrics").text
    assert 'ingest_webhook_responses_total{code="503"} 1.0' in scraped
    assert 'ingest_webhook_requests_total{outcome="unavailable"} 1.0' in scraped
    assert "ingest_kafka_ready 0.0" in scraped
    # Several connection attempts later it is still up, still not ready.
    wait_for_sync(
        lambda: "KafkaConnectionError" in httpx.get(f"{url}/readyz").json()["reason"], timeout=30, message="retrying"
    )
    assert process.poll() is None
    stop_gracefully(process)


def stop_gracefully(process: subprocess.Popen[str]) -> str:
    """SIGTERM, then the process must drain and exit by itself (uvicorn re-raises the signal after its shutdown)."""
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    output = process.communicate(timeout=10)[0]
    assert '"event": "ingest stopped"' in output, output[-3000:]
    return output


def test_sigterm_drains_and_exits_cleanly(started, kafka_bootstrap: str) -> None:  # type: ignore[no-untyped-def]
    process, url = started(KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap)
    wait_for_sync(lambda: httpx.get(f"{url}/readyz").status_code == 200, timeout=60, message="ready")
    body = recording_done()
    assert httpx.post(f"{url}/webhooks/recall", content=body, headers=signed(body)).status_code == 200
    assert '"producer_flushed": true' in stop_gracefully(process)
