"""Choose the Kafka broker for the test session (docs/architecture.md, "Testing against real parts").

Order: ``KAFKA_BOOTSTRAP_SERVERS`` if set; else a broker container started through testcontainers when asked for
(``KAFKA_TEST_BROKER=container``) or, with ``KAFKA_TEST_BROKER`` unset, when a Docker daemon answers *and* the Kafka
test image (``KAFKA_TEST_IMAGE``) is already present on it; else the project's own local broker
(scripts/kafka-local) on a free loopback port with a throw-away state directory (``KAFKA_TEST_BROKER=local`` forces
it). Never a mock or an emulator.

A daemon alone does not switch the tests to containers: the image must be there (``make images`` builds it from the
same Apache Kafka jars as the local broker), so a machine where some other tool happens to run a Docker daemon keeps
the local broker. The project's image runs on the host's network (``--network host``: one free loopback port, no
bridge needed); any other image (e.g. ``confluentinc/cp-kafka:7.9.0`` on Docker Desktop) goes through
testcontainers' own ``KafkaContainer`` in KRaft mode with a mapped port.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from devkit.ports import free_port_pair

__all__ = ["KAFKA_LOCAL", "ROOT", "Broker", "docker_daemon_answers", "free_port_pair", "session_broker"]
from tests.support.waiting import wait_for_sync

ROOT = Path(__file__).resolve().parents[2]
KAFKA_LOCAL = ROOT / "scripts" / "kafka-local"
PINNED_KAFKA_VERSION = re.search(
    r"<kafka.version>(.*)</kafka.version>", (ROOT / "scripts" / "kafka" / "pom.xml").read_text(encoding="utf-8")
)
#: The image `make images` builds (deploy/images/kafka): Apache Kafka from the jars scripts/kafka-local runs.
DEFAULT_TEST_IMAGE = f"recall-pipeline/kafka:{PINNED_KAFKA_VERSION.group(1) if PINNED_KAFKA_VERSION else 'latest'}"
CONTAINER_START_TIMEOUT = 120.0


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


def image_present(image: str) -> bool:
    try:
        result = subprocess.run(["docker", "image", "inspect", image], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return result.returncode == 0


def kafka_test_image() -> str:
    return os.environ.get("KAFKA_TEST_IMAGE") or DEFAULT_TEST_IMAGE


def wants_container() -> bool:
    """Whether the session broker is a container (see the module docstring); raises on a bad setting."""
    choice = os.environ.get("KAFKA_TEST_BROKER", "").strip().lower()
    if choice not in ("", "auto", "local", "container"):
        raise RuntimeError(f"KAFKA_TEST_BROKER must be local, container or auto (unset), not {choice!r}")
    if choice == "local":
        return False
    if choice == "container":
        if not docker_daemon_answers():
            raise RuntimeError("KAFKA_TEST_BROKER=container, but no Docker daemon answers (`docker info` failed)")
        return True
    return docker_daemon_answers() and image_present(kafka_test_image())


def _no_reaper_unless_present() -> None:
    """testcontainers' reaper (Ryuk) is an image of its own, which cannot be pulled where no registry is reachable:
    without it the fixture's ``with`` block still removes the container."""
    if "TESTCONTAINERS_RYUK_DISABLED" in os.environ:
        return
    from testcontainers.core.config import testcontainers_config

    if not image_present(testcontainers_config.ryuk_image):
        testcontainers_config.ryuk_disabled = True


def _broker_answers(port: int) -> bool:
    probe = ROOT / "scripts" / "kafka" / "probe.py"
    result = subprocess.run([sys.executable, str(probe), "127.0.0.1", str(port), "2"], capture_output=True, timeout=10)
    return result.returncode == 0


@contextmanager
def container_broker(image: str) -> Iterator[Broker]:
    """The Kafka image through testcontainers: the project's own on the host network, any other through
    ``KafkaContainer`` (Confluent's images, KRaft, a mapped port)."""
    _no_reaper_unless_present()
    if "cp-kafka" in image:
        from testcontainers.community.kafka import KafkaContainer

        with KafkaContainer(image).with_kraft() as kafka:
            yield Broker(bootstrap_servers=kafka.get_bootstrap_server(), origin="testcontainers")
        return
    from testcontainers.core.container import DockerContainer

    port = free_port_pair()
    container = DockerContainer(image).with_kwargs(network_mode="host", read_only=True)
    # Throw-away, owned by the image's user (UID 10001); testcontainers passes the value as the tmpfs options.
    for path in ("/tmp", "/var/lib/kafka"):
        container.tmpfs[path] = "rw,uid=10001,gid=10001"
    container = (
        container.with_env("KAFKA_PORT", str(port))
        .with_env("KAFKA_LISTEN_HOST", "127.0.0.1")
        .with_env("KAFKA_ADVERTISED_HOST", "127.0.0.1")
    )
    with container:

        def answers() -> bool:
            wrapped = container.get_wrapped_container()
            wrapped.reload()
            if wrapped.status != "running":
                out, err = container.get_logs()
                raise RuntimeError(f"Kafka container {image} exited ({wrapped.status}):\n{(out + err)[-3000:]!r}")
            return _broker_answers(port)

        wait_for_sync(
            answers,
            timeout=CONTAINER_START_TIMEOUT,
            interval=0.5,
            message=f"Kafka container {image} answering on 127.0.0.1:{port}",
        )
        yield Broker(bootstrap_servers=f"127.0.0.1:{port}", origin="testcontainers")


@contextmanager
def session_broker() -> Iterator[Broker]:
    from_env = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if from_env:
        yield Broker(bootstrap_servers=from_env, origin="env")
        return
    if wants_container():
        with container_broker(kafka_test_image()) as broker:
            yield broker
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
