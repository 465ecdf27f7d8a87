"""scripts/with-docker: a daemon is started only when none answers, on a private socket, and stopped again; where
none can be started the command still runs and learns why. Fake `docker`/`dockerd` binaries stand in for Docker."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.broker import ROOT
from tests.support.waiting import wait_for_sync

pytestmark = pytest.mark.unit

WITH_DOCKER = ROOT / "scripts" / "with-docker"

FAKE_DOCKER = """#!/usr/bin/env bash
echo "docker $*" >> "$FAKE_DIR/calls.log"
if [[ "$1" == info ]]; then [[ -f "$FAKE_DIR/up" ]]; exit; fi
exit 1
"""
# A daemon that "answers" while it runs and stops on SIGTERM.
FAKE_DOCKERD = """#!/usr/bin/env bash
echo "dockerd $*" >> "$FAKE_DIR/calls.log"
trap 'rm -f "$FAKE_DIR/up"; exit 0' TERM
touch "$FAKE_DIR/up"
while :; do sleep 0.1; done
"""
BROKEN_DOCKERD = """#!/usr/bin/env bash
echo "dockerd: failed to start daemon: no cgroups" >&2
exit 1
"""
REPORT = 'echo "host=${DOCKER_HOST-} unavailable=${DOCKER_UNAVAILABLE-}"; docker info >/dev/null && echo answers'


def fake_bin(tmp_path: Path, dockerd: str) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in {"docker": FAKE_DOCKER, "dockerd": dockerd, "mmdebstrap": "#!/bin/sh\nexit 0\n"}.items():
        (bin_dir / name).write_text(text, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    return bin_dir


def with_docker(tmp_path: Path, bin_dir: Path, *command: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "FAKE_DIR": str(tmp_path),
        "DOCKER_STATE_DIR": str(tmp_path / "state"),
        "DOCKER_START_TIMEOUT": "20",
    }
    return subprocess.run(
        [str(WITH_DOCKER), *command], env=env, capture_output=True, text=True, timeout=90, check=False
    )


def calls(tmp_path: Path) -> str:
    log = tmp_path / "calls.log"
    return log.read_text(encoding="utf-8") if log.exists() else ""


def test_a_daemon_that_answers_is_used_and_none_is_started(tmp_path: Path) -> None:
    (tmp_path / "up").touch()
    result = with_docker(tmp_path, fake_bin(tmp_path, FAKE_DOCKERD), "sh", "-c", REPORT)
    assert result.returncode == 0, result.stderr
    assert "host= unavailable=\nanswers" in result.stdout
    assert "dockerd" not in calls(tmp_path)
    assert (tmp_path / "up").exists()  # nobody stopped the daemon it did not start


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a daemon needs root")
def test_a_daemon_it_starts_listens_privately_and_is_stopped_whatever_the_command_did(tmp_path: Path) -> None:
    result = with_docker(tmp_path, fake_bin(tmp_path, FAKE_DOCKERD), "sh", "-c", REPORT + "; exit 7")
    assert result.returncode == 7, result.stderr  # the command's status
    socket = f"unix://{ROOT}/.cache/docker/docker.sock"
    assert f"host={socket} unavailable=\nanswers" in result.stdout
    (started,) = [line for line in calls(tmp_path).splitlines() if line.startswith("dockerd")]
    assert "--bridge=none" in started and "--iptables=false" in started and f"-H {socket}" in started
    wait_for_sync(lambda: not (tmp_path / "up").exists(), timeout=10, message="the daemon it started stopped")
    assert "stopped dockerd" in result.stdout


def test_where_no_daemon_can_start_the_command_runs_and_learns_why(tmp_path: Path) -> None:
    result = with_docker(tmp_path, fake_bin(tmp_path, BROKEN_DOCKERD), "sh", "-c", REPORT)
    assert result.returncode == 1  # `docker info` still fails inside
    reason = "dockerd exited during start-up" if os.geteuid() == 0 else "needs root"
    assert "host= unavailable=" in result.stdout and reason in result.stdout, result.stdout
    assert f"with-docker: no Docker daemon: {reason}" in result.stderr or reason in result.stderr
