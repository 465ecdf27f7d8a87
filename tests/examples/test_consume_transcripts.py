"""examples/consume_transcripts.py, the downstream example of docs/consuming-transcripts.md, run as a person runs it
against the real broker's transcripts.ready and transcripts.failed."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from devkit import docs
from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import FAILED_EVENT_TYPE, READY_EVENT_TYPE
from pipeline_common.kafka import ensure_topics
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import TRANSCRIPTS_FAILED, TRANSCRIPTS_READY
from tests.support.kafka import KafkaTestClient

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "consume_transcripts.py"


def cloudevent(event_type: str, event_id: str, subject: str) -> list[tuple[str, bytes]]:
    return build_headers(
        CloudEventAttributes(id=event_id, source="urn:test", type=event_type, time=datetime.now(UTC), subject=subject)
    )


async def distinct_events(kafka: KafkaTestClient) -> tuple[int, dict[bytes, tuple[str, int, int]]]:
    """What the example should print when it reads both topics from the beginning (one line per distinct ce_id among
    the committed records: transcripts.ready is written in transactions, so the log also holds markers and aborted
    records), and where each ce_id was first written (topic, partition, offset)."""
    first: dict[bytes, tuple[str, int, int]] = {}
    partitions = [
        TopicPartition(topic, partition)
        for topic in (TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name)
        for partition in await kafka.end_offsets(topic)
    ]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=kafka.bootstrap_servers, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        stable = await consumer.end_offsets(partitions)  # read_committed: the last stable offsets
        deadline = asyncio.get_running_loop().time() + 30
        while [tp for tp in partitions if await consumer.position(tp) < stable[tp]]:
            assert asyncio.get_running_loop().time() < deadline, "could not read both topics up to their stable end"
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    where = (record.topic, record.partition, record.offset)
                    event_id = dict(record.headers or ()).get("ce_id", b"")
                    first[event_id] = min(first.get(event_id, where), where)
    finally:
        await consumer.stop()
    return len(first), first


async def committed_offsets(bootstrap: str, group: str) -> dict[tuple[str, int], int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


async def run_example(bootstrap: str, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap},
    )
    try:
        async with asyncio.timeout(90):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_the_example_prints_one_line_per_ready_and_failed_event(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str
) -> None:
    await ensure_topics(
        KafkaSettings(kafka_bootstrap_servers=[kafka_bootstrap]), [TRANSCRIPTS_READY, TRANSCRIPTS_FAILED]
    )
    ready_id, failed_id = f"rec-ready-{unique}", f"rec-failed-{unique}"
    ready = docs.example_ready().model_copy(update={"recording_id": ready_id, "transcript_id": f"tr-{unique}"})
    failed = docs.example_failed().model_copy(update={"recording_id": failed_id})
    ready_headers = cloudevent(READY_EVENT_TYPE, f"transcript-ready:tr-{unique}", ready_id)
    # Delivered twice (at least once): the example prints it once.
    for _ in range(2):
        await kafka.produce(
            TRANSCRIPTS_READY.name, [(ready_id.encode(), ready.model_dump_json().encode())], headers=ready_headers
        )
    await kafka.produce(
        TRANSCRIPTS_FAILED.name,
        [(failed_id.encode(), failed.model_dump_json().encode())],
        headers=cloudevent(FAILED_EVENT_TYPE, f"transcript-failed:{failed_id}", failed_id),
    )
    expected, first_written = await distinct_events(kafka)

    code, stdout, stderr = await run_example(
        kafka_bootstrap, "--group", unique, "--from-beginning", "--max-events", str(expected), "--timeout", "60"
    )
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert len(lines) == expected, stdout
    mine = [line for line in lines if unique in line]
    assert sorted(mine) == [
        f"failed {failed_id} reason=providers_exhausted attempts=2",
        f"ready  {ready_id} transcript=tr-{unique} provider=recallai_async words=5321 raw={ready.raw.uri}",
    ]

    # The group committed what it printed: a restart does not print these again. (Checked on the offsets: a second
    # run's output would depend on whether the redelivered copy was read before the last distinct event.)
    committed = await committed_offsets(kafka_bootstrap, unique)
    for event_id in (f"transcript-ready:tr-{unique}".encode(), f"transcript-failed:{failed_id}".encode()):
        topic, partition, offset = first_written[event_id]
        assert committed.get((topic, partition), -1) > offset, (event_id, committed)


def test_the_example_needs_nothing_but_aiokafka() -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    imports = {line.split()[1] for line in source.splitlines() if line.startswith(("import ", "from "))}
    assert imports == {"argparse", "asyncio", "json", "os", "aiokafka"}
