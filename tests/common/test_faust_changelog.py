"""faust-streaming + aiokafka + this broker: a Table's state is recovered from its changelog after a restart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.broker import ROOT
from tests.support.kafka import KafkaTestClient

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def worker_env(kafka: KafkaTestClient, unique: str, tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "COUNTER_APP_ID": f"counter-{unique}",
        "COUNTER_SOURCE_TOPIC": f"{unique}-in",
        "COUNTER_OUTPUT_TOPIC": f"{unique}-out",
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def start_worker(worker_env: dict[str, str], tmp_path: Path) -> Iterator[object]:
    workers: list[subprocess.Popen[bytes]] = []

    def start(name: str) -> subprocess.Popen[bytes]:
        log = (tmp_path / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.support.faust_counter",
                "--datadir",
                str(tmp_path / name),
                "worker",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=worker_env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        workers.append(process)
        return process

    yield start
    for process in workers:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


async def test_table_state_is_recovered_from_the_changelog(
    kafka: KafkaTestClient,
    worker_env: dict[str, str],
    start_worker,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    source, output = worker_env["COUNTER_SOURCE_TOPIC"], worker_env["COUNTER_OUTPUT_TOPIC"]
    await kafka.create_topic(source)
    await kafka.create_topic(output)

    first = start_worker("first")
    await kafka.produce(source, [(b'"a"', b'"x"')] * 3 + [(b'"b"', b'"x"')])
    counts = await kafka.consume(output, count=4, timeout=180, until=lambda _: first.poll() is not None)
    assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
    assert sorted((r.key, r.value) for r in counts) == sorted(
        [(b'"a"', b'"1"'), (b'"a"', b'"2"'), (b'"a"', b'"3"'), (b'"b"', b'"1"')]
    )
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=60) is not None

    start_worker("second")  # a new process with an empty memory store: only the changelog knows "a" is at 3
    await kafka.produce(source, [(b'"a"', b'"x"')])
    try:
        records = await kafka.consume(output, count=5, timeout=180)
    except AssertionError as error:
        raise AssertionError(f"{error}\nsecond worker:\n{(tmp_path / 'second.log').read_text()[-3000:]}") from None
    assert (records[-1].key, records[-1].value) == (b'"a"', b'"4"'), (tmp_path / "second.log").read_text()[-3000:]
