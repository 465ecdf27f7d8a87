"""scripts/kafka-local as an operator meets it: idempotent start and stop, clear messages, no orphan JVM."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import KAFKA_LOCAL, free_port_pair

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAFKA_LOCAL), *args], env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port_pair()
    environment = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(port + 1),
        "KAFKA_STATE_DIR": str(tmp_path / "kafka"),
        "KAFKA_HEAP": "256m",
    }
    yield environment
    run(environment, "stop")


def test_start_twice_stop_twice(env: dict[str, str]) -> None:
    first = run(env, "start")
    assert first.returncode == 0, first.stderr
    assert "running (pid" in first.stdout
    pid = int(Path(env["KAFKA_STATE_DIR"], "kafka.pid").read_text())

    second = run(env, "start")
    assert second.returncode == 0
    assert f"already running (pid {pid})" in second.stdout
    assert run(env, "status").returncode == 0

    stopped = run(env, "stop")
    assert stopped.returncode == 0 and f"stopped (pid {pid})" in stopped.stdout
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    again = run(env, "stop")
    assert again.returncode == 0 and "not running" in again.stdout
    assert run(env, "status").returncode == 1


def test_a_stale_pid_file_is_reported_and_replaced(env: dict[str, str]) -> None:
    state = Path(env["KAFKA_STATE_DIR"])
    state.mkdir(parents=True)
    (state / "kafka.pid").write_text("999999\n")
    started = run(env, "start")
    assert started.returncode == 0, started.stderr
    assert "removing stale pid file" in started.stdout
    assert (state / "kafka.pid").read_text().strip() != "999999"


def test_a_port_in_use_is_a_clear_error(env: dict[str, str]) -> None:
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", int(env["KAFKA_PORT"])))
        squatter.listen()
        result = run(env, "start")
    assert result.returncode != 0
    assert f"port {env['KAFKA_PORT']} on 127.0.0.1 is already in use" in result.stderr
    assert not Path(env["KAFKA_STATE_DIR"], "kafka.pid").exists()


def test_unknown_command_prints_usage(env: dict[str, str]) -> None:
    result = run(env, "explode")
    assert result.returncode == 2 and "usage:" in result.stderr
