"""Where a local stack's processes live: a :class:`Profile` (its ports, its directory under var/, how many Kafka
nodes) and a :class:`Process` (one replica of a service), and how a replica differs from the first."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from devkit import ROOT
from devkit.ports import free_port, free_port_block, free_port_pair


@dataclass(frozen=True)
class Profile:
    """Where one stack lives: its ports and its directory under var/. ``dev`` is ``make up``; ``demo`` is separate
    so that ``make demo`` never collides with a stack someone left running."""

    name: str
    kafka_port: int
    sim_port: int
    ingest_port: int
    transcriber_port: int
    fetcher_port: int
    brokers: int = (
        1  # more than one: a local cluster (scripts/kafka-local's KAFKA_LOCAL_BROKERS), node I on port+2(I-1)
    )

    @property
    def home(self) -> Path:
        return ROOT / "var" / self.name

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pids(self) -> Path:
        return self.home / "pids"

    @property
    def transcripts(self) -> Path:
        return self.home / "transcripts"

    @property
    def bootstrap(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.broker_ports)

    @property
    def broker_ports(self) -> list[int]:
        return [self.kafka_port + 2 * node for node in range(self.brokers)]

    @property
    def replication_factor(self) -> int:
        return min(self.brokers, 3)


PROFILES = {
    "dev": Profile("dev", kafka_port=9092, sim_port=8081, ingest_port=8080, transcriber_port=6066, fetcher_port=6067),
    "demo": Profile(
        "demo", kafka_port=19092, sim_port=18081, ingest_port=18080, transcriber_port=16066, fetcher_port=16067
    ),
}


def ephemeral_profile(name: str, brokers: int = 1) -> Profile:
    """A profile on free loopback ports (for tests): never collides with ``dev``, ``demo`` or another run."""
    kafka_port = free_port_pair() if brokers == 1 else free_port_block(2 * brokers)
    return Profile(
        name, kafka_port, free_port_pair(), free_port_pair(), free_port_pair(), free_port_pair(), brokers=brokers
    )


@dataclass
class Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    ready_url: str
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    service: str = ""  # what it runs (``transcriber``); ``name`` tells replicas apart (``transcriber-2``)
    port: int = 0  # its HTTP port (webhooks, or the worker's web pages)

    def __post_init__(self) -> None:
        self.service = self.service or self.name


#: Per service: the variable of its HTTP port and of its data directory (what two replicas must not share).
REPLICA_VARIABLES = {
    "ingest": ("INGEST_PORT", None),
    "transcriber": ("TRANSCRIBER_WEB_PORT", "TRANSCRIBER_DATA_DIR"),
    "fetcher": ("FETCHER_WEB_PORT", "FETCHER_DATA_DIR"),
}


def replica(profile: Profile, first: Process, index: int, port: int | None = None) -> Process:
    """Replica ``index`` (2, 3, ...) of ``first``'s service: the same settings, its own name, port and data
    directory (what a Deployment's pods differ in)."""
    port = port or free_port()
    port_variable, data_variable = REPLICA_VARIABLES[first.service]
    name = f"{first.service}-{index}"
    env = {**first.env, port_variable: str(port)}
    if data_variable is not None:
        env[data_variable] = str(profile.home / name)
    ready_url = f"http://127.0.0.1:{port}/readyz"
    return Process(name, list(first.argv), env, ready_url, service=first.service, port=port)
