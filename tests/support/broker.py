"""Choose the Kafka broker for the test session (docs/architecture.md, "Testing against real parts").

Order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else testcontainers' ``KafkaContainer`` in KRaft mode if a Docker daemon
answers; else the project's own local broker (scripts/kafka-local) on a free loopback port with a throw-away state
directory. Never a mock or an emulator.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit.ports import free_port_pair

__all__ = ["KAFKA_LOCAL", "ROOT", "Broker", "docker_daemon_answers", "free_port_pair", "session_broker"]

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = ROOT / "scripts" / "kafka-local"
TESTCONTAINERS_IMAGE = "confluentinc/cp-kafka:7.9.0"


@dataclass(frozen=True)
class Broker:
    bootstrap_servers: str
    origin: str  # "env", "testcontainers" or "local"
    # Only for a broker this session started itself: lets fault tests stop and restart it.
    state_dir: Path | None = None
    port: int | None = None

    def _env(self) -> dict[str, str]:
        if self.state_dir is None or self.port is None:
            raise RuntimeError(f"a broker from {self.origin} cannot be stopped or started by the tests")
        return {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "KAFKA_STATE_DIR": str(self.state_dir),
        }

    @property
    def controllable(self) -> bool:
        return self.state_dir is not None

    def stop(self) -> None:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=self._env(), check=True, capture_output=True)

    def start(self) -> None:
        result = subprocess.run([str(KAFKA_LOCAL), "start"], env=self._env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"local Kafka broker did not start:\n{result.stdout}\n{result.stderr}")


def docker_daemon_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        result = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0 and bool(result.stdout.strip())


@contextmanager
def session_broker() -> Iterator[Broker]:
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        yield Broker(bootstrap_servers=from_env, origin="env")
        return
    if docker_daemon_answers():
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(TESTCONTAINERS_IMAGE).with_kraft() as container:
            yield Broker(bootstrap_servers=container.get_bootstrap_server(), origin="testcontainers")
        return
    state_dir = Path(tempfile.mkdtemp(prefix="kafka-test-"))
    port = free_port_pair()
    broker = Broker(bootstrap_servers=f"127.0.0.1:{port}", origin="local", state_dir=state_dir, port=port)
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
