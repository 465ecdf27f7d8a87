"""Choose the Kafka broker for the test session (DESIGN §6).

Order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else testcontainers' ``KafkaContainer`` in KRaft mode if a Docker daemon
answers; else the project's own local broker (scripts/kafka-local) on a free loopback port with a throw-away state
directory. Never a mock or an emulator.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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


def free_port_pair() -> int:
    """A port P such that P and P+1 are both free on 127.0.0.1 (client and controller listeners)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port >= 65535:
            continue
        with socket.socket() as second:
            try:
                second.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free pair of loopback ports found")


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


# --- The secured local broker (scripts/kafka-local, KAFKA_LOCAL_MODE=secured): SCRAM over TLS and mutual TLS,
# ACLs from the topic registry. Only the local broker can be secured this way: it is always started locally.


@dataclass(frozen=True)
class SecuredBroker:
    """A secured broker this session started: SASL_SSL (SCRAM-SHA-512) on ``port``, mutual TLS on ``mtls_port``."""

    port: int
    mtls_port: int
    state_dir: Path

    def _script_env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_PORT": str(self.port),
            "KAFKA_CONTROLLER_PORT": str(self.port + 1),
            "KAFKA_MTLS_PORT": str(self.mtls_port),
            "KAFKA_STATE_DIR": str(self.state_dir),
            "KAFKA_LOCAL_MODE": "secured",
        }

    @property
    def ca_file(self) -> Path:
        return self.state_dir / "cluster-ca" / "ca.crt"

    def user_dir(self, user: str) -> Path:
        return self.state_dir / "users" / user

    def client_env(self, user: str, how: str = "scram") -> dict[str, str]:
        """The ``KAFKA_*`` settings scripts/kafka-local prints for ``user`` (``scram`` or ``mtls``)."""
        result = subprocess.run(
            [str(KAFKA_LOCAL), "client-env", user, how],
            env=self._script_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        pairs = (line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
        return {key: value for key, value in pairs}

    def start(self) -> None:
        result = subprocess.run([str(KAFKA_LOCAL), "start"], env=self._script_env(), capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"secured local Kafka broker did not start:\n{result.stdout}\n{result.stderr}")

    def stop(self) -> None:
        subprocess.run([str(KAFKA_LOCAL), "stop"], env=self._script_env(), check=True, capture_output=True)


def free_ports(count: int) -> int:
    """A port P such that P .. P+count-1 are all free on 127.0.0.1."""
    import socket  # this section stays self-contained: the module's imports change with the broker choice above

    for _ in range(100):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port + count > 65535:
            continue
        try:
            for offset in range(1, count):
                with socket.socket() as other:
                    other.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} consecutive free loopback ports found")


@contextmanager
def secured_local_broker() -> Iterator[SecuredBroker]:
    state_dir = Path(tempfile.mkdtemp(prefix="kafka-secured-test-"))
    port = free_ports(3)
    broker = SecuredBroker(port=port, mtls_port=port + 2, state_dir=state_dir)
    try:
        broker.start()
        yield broker
    finally:
        try:
            broker.stop()
        finally:
            shutil.rmtree(state_dir, ignore_errors=True)
