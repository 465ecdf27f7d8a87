"""What ``create_faust_app`` guarantees every worker: idempotent producers, and the faust patches applied by the
factory (not by an import), on the faust version they were written for only."""

from __future__ import annotations

import subprocess
import sys

import faust
import pytest

from pipeline_common.settings import KafkaSettings
from pipeline_common.streaming import create_faust_app
from pipeline_common.worker_settings import FaustWorker

pytestmark = pytest.mark.unit

WORKER = FaustWorker(
    app_id="streaming-core-test",
    data_dir="/tmp/streaming-core-test",
    partitions=4,
    auto_offset_reset="earliest",
    web_host="127.0.0.1",
    web_port=6099,
    session_timeout_seconds=15,
)


def kafka_settings() -> KafkaSettings:
    return KafkaSettings(kafka_bootstrap_servers=["127.0.0.1:9"])  # type: ignore[call-arg]


async def test_every_producer_the_workers_use_is_idempotent() -> None:
    app = create_faust_app(kafka_settings(), WORKER)
    producer = app.producer._new_producer()
    try:
        assert producer._txn_manager is not None  # aiokafka's idempotent-producer state
        assert producer._sender._acks == -1  # type: ignore[attr-defined]
    finally:
        await producer.stop()


def test_importing_the_library_patches_nothing() -> None:
    code = (
        "import pipeline_common.streaming\n"
        "from faust.transport.consumer import Consumer\n"
        "print(getattr(Consumer._new_offset, '_never_past_in_flight', False))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert result.stdout.strip() == "False"


def test_the_factory_refuses_a_faust_version_the_patches_were_not_written_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faust, "__version__", "0.16.0")
    with pytest.raises(RuntimeError, match=r"faust-streaming 0\.16\.0 is installed.*written for 0\.15\.x"):
        create_faust_app(kafka_settings(), WORKER)
