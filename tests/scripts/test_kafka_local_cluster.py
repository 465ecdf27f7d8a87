"""scripts/kafka-local's cluster mode: three KRaft nodes, replication factor 3 and min.insync.replicas 2, one node
killed and started again by index; and the clear errors of what it does not do."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from devkit.ports import free_port_block
from tests.support.broker import KAFKA_LOCAL
from tests.support.waiting import wait_for


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(KAFKA_LOCAL), *args], env=env, capture_output=True, text=True, timeout=240)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    environment = {
        **os.environ,
        "KAFKA_PORT": str(free_port_block(6)),
        "KAFKA_STATE_DIR": str(tmp_path / "kafka"),
        "KAFKA_LOCAL_BROKERS": "3",
    }
    environment.pop("KAFKA_CONTROLLER_PORT", None)
    yield environment
    run(environment, "stop")


@pytest.mark.integration
def test_a_secured_cluster_is_refused_clearly(env: dict[str, str]) -> None:
    result = run({**env, "KAFKA_LOCAL_MODE": "secured"}, "start")
    assert result.returncode == 1
    assert "KAFKA_LOCAL_BROKERS > 1 runs plaintext only" in result.stderr
    assert not Path(env["KAFKA_STATE_DIR"]).exists()  # nothing formatted, nothing started


@pytest.mark.integration
def test_a_node_outside_the_cluster_is_refused_clearly(env: dict[str, str]) -> None:
    result = run(env, "kill-node", "4")
    assert result.returncode == 1 and "no node '4' (nodes 1-3)" in result.stderr
    single = run({**env, "KAFKA_LOCAL_BROKERS": "1"}, "kill-node", "1")
    assert single.returncode == 1 and "not a cluster" in single.stderr


async def write_with_all_acks(bootstrap: str, topic: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=20_000)
    await producer.start()
    try:
        await producer.send_and_wait(topic, b"written with one node down")
    finally:
        await producer.stop()


async def create_topic(bootstrap: str, topic: str) -> int:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])

        async def partitions() -> list[dict[str, Any]] | None:
            # The controller answers the create before every broker's metadata lists the new partitions.
            (described,) = await admin.describe_topics([topic])
            return list(described["partitions"]) or None

        listed = await wait_for(partitions, timeout=30, message=f"{topic}'s partitions in the metadata")
        return min(len(partition["replicas"]) for partition in listed)
    finally:
        await admin.close()


@pytest.mark.integration
@pytest.mark.slow
def test_three_nodes_survive_one_killed_and_take_it_back(env: dict[str, str]) -> None:
    started = run(env, "start")
    assert started.returncode == 0, started.stderr + started.stdout
    assert "cluster of 3 nodes running" in started.stdout
    assert "replication factor 3, min.insync.replicas 2" in started.stdout
    bootstrap = run(env, "bootstrap").stdout.strip()
    port = int(env["KAFKA_PORT"])
    assert bootstrap == f"127.0.0.1:{port},127.0.0.1:{port + 2},127.0.0.1:{port + 4}"
    assert asyncio.run(create_topic(bootstrap, "cluster.check")) == 3
    for node in (1, 2, 3):
        config = Path(env["KAFKA_STATE_DIR"], f"node-{node}", "server.properties").read_text().splitlines()
        assert {"min.insync.replicas=2", "default.replication.factor=3", "offsets.topic.replication.factor=3"} <= set(
            config
        )
        assert f"node.id={node}" in config

    killed = run(env, "kill-node", "2")
    assert killed.returncode == 0 and "node 2 killed" in killed.stdout
    status = run(env, "status")
    assert status.returncode == 1 and "node 2 not running" in status.stdout
    # Two in-sync replicas remain: acks=all still succeeds (min.insync.replicas=2).
    asyncio.run(write_with_all_acks(bootstrap, "cluster.check"))

    back = run(env, "start-node", "2")
    assert back.returncode == 0 and "the cluster lists every node" in back.stdout, back.stderr
    assert run(env, "status").returncode == 0
    stopped = run(env, "stop")
    assert stopped.returncode == 0
    assert run(env, "status").returncode == 1


@pytest.mark.integration
def test_a_taken_port_of_the_last_node_starts_no_node(env: dict[str, str]) -> None:
    taken = int(env["KAFKA_PORT"]) + 5  # node 3's controller listener
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", taken))
        squatter.listen()
        result = run(env, "start")
    assert result.returncode == 1
    assert f"port {taken} on 127.0.0.1 is already in use" in result.stderr
    state = Path(env["KAFKA_STATE_DIR"])
    assert not list(state.glob("node-*/kafka.pid")), "a node was started although the cluster could not be"
