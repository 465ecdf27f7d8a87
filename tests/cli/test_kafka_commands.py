"""recall-pipeline against the real broker: recording show, dlq replay, ready tail, and their failures."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime

import pytest

from devkit import docs
from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import FAILED_EVENT_TYPE, READY_EVENT_TYPE
from pipeline_common.dlq import dlq_headers
from pipeline_common.kafka import ensure_topics
from pipeline_common.settings import KafkaSettings
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIPT_EVENTS, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY
from tests.cli.conftest import CLI_VARIABLES, CONSOLE_SCRIPT, Invoke
from tests.support.kafka import KafkaTestClient

pytestmark = pytest.mark.integration

LIFECYCLE = [RECORDING_EVENTS, TRANSCRIPT_EVENTS, TRANSCRIPTS_READY, TRANSCRIPTS_FAILED]


@pytest.fixture
async def lifecycle_topics(kafka_bootstrap: str) -> None:
    await ensure_topics(KafkaSettings(kafka_bootstrap_servers=[kafka_bootstrap]), LIFECYCLE)


def headers(event_type: str, event_id: str, subject: str) -> list[tuple[str, bytes]]:
    return build_headers(
        CloudEventAttributes(id=event_id, source="urn:test", type=event_type, time=datetime.now(UTC), subject=subject)
    )


def webhook(event: str, recording_id: str, transcript_id: str = "tr_1", sub_code: str | None = None) -> bytes:
    body = docs.example_webhook(event)
    body["data"]["recording"]["id"] = recording_id
    if "transcript" in body["data"]:
        body["data"]["transcript"]["id"] = transcript_id
    body["data"]["data"]["sub_code"] = sub_code
    return json.dumps(body).encode()


def ready_event(recording_id: str, transcript_id: str) -> bytes:
    event = docs.example_ready().model_copy(update={"recording_id": recording_id, "transcript_id": transcript_id})
    return event.model_dump_json().encode()


def failed_event(recording_id: str) -> bytes:
    return docs.example_failed().model_copy(update={"recording_id": recording_id}).model_dump_json().encode()


async def put(kafka: KafkaTestClient, topic: str, key: str, value: bytes, event_type: str, event_id: str) -> None:
    await kafka.produce(topic, [(key.encode(), value)], headers=headers(event_type, event_id, key))


# ----------------------------------------------------------------------------------------------- recording show
@pytest.mark.usefixtures("lifecycle_topics")
async def test_recording_show_prints_the_lifecycle_in_time_order(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke
) -> None:
    rid = f"rec-{unique}"
    other = f"other-{unique}"
    await put(kafka, RECORDING_EVENTS.name, rid, webhook("recording.done", rid), "recording.done", f"w1-{unique}")
    await put(kafka, RECORDING_EVENTS.name, other, webhook("recording.done", other), "recording.done", f"w0-{unique}")
    await put(
        kafka,
        TRANSCRIPT_EVENTS.name,
        rid,
        webhook("transcript.failed", rid, "tr_a", sub_code="provider_connection_failed"),
        "transcript.failed",
        f"w2-{unique}",
    )
    await put(
        kafka, TRANSCRIPT_EVENTS.name, rid, webhook("transcript.done", rid, "tr_b"), "transcript.done", f"w3-{unique}"
    )
    await put(kafka, TRANSCRIPTS_READY.name, rid, ready_event(rid, "tr_b"), READY_EVENT_TYPE, f"r-{unique}")

    result = await invoke("-b", kafka_bootstrap, "recording", "show", rid)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 5, result.stdout
    assert [line.split()[1] for line in lines[:4]] == [
        RECORDING_EVENTS.name,
        TRANSCRIPT_EVENTS.name,
        TRANSCRIPT_EVENTS.name,
        TRANSCRIPTS_READY.name,
    ]
    assert "recording.done" in lines[0] and "code=done" in lines[0]
    assert "transcript.failed" in lines[1] and "sub_code=provider_connection_failed" in lines[1]
    assert "transcript=tr_a" in lines[1]
    assert "transcript=tr_b" in lines[2]
    assert f"recording={rid} transcript=tr_b provider=recallai_async attempt=1 words=5321" in lines[3]
    assert lines[4].startswith("status: ready (transcript tr_b by recallai_async, stored at s3://")
    assert other not in result.stdout
    assert f"4 event(s) for recording {rid}" in result.stderr

    as_json = await invoke("-b", kafka_bootstrap, "recording", "show", rid, "--json")
    assert as_json.exit_code == 0
    records = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [record["key"] for record in records] == [rid] * 4
    assert records[0]["headers"]["ce_id"] == f"w1-{unique}"
    assert records[3]["value"]["transcript_id"] == "tr_b"


@pytest.mark.usefixtures("lifecycle_topics")
async def test_recording_show_reports_a_failed_recording(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke
) -> None:
    rid = f"rec-{unique}"
    await put(kafka, RECORDING_EVENTS.name, rid, webhook("recording.done", rid), "recording.done", f"w1-{unique}")
    await put(kafka, TRANSCRIPTS_FAILED.name, rid, failed_event(rid), FAILED_EVENT_TYPE, f"f-{unique}")
    result = await invoke("-b", kafka_bootstrap, "recording", "show", rid)
    assert result.exit_code == 0, result.output
    assert "reason=providers_exhausted attempts=2" in result.stdout
    assert result.stdout.splitlines()[-1] == "status: failed (providers_exhausted after 2 attempt(s))"


@pytest.mark.usefixtures("lifecycle_topics")
async def test_recording_show_exits_1_when_nothing_is_found(kafka_bootstrap: str, unique: str, invoke: Invoke) -> None:
    result = await invoke("-b", kafka_bootstrap, "recording", "show", f"never-{unique}")
    assert result.exit_code == 1
    assert f"no events for recording 'never-{unique}' on recall.recording.events" in result.stderr
    assert result.stdout == ""


async def test_recording_show_refuses_an_unknown_topic(kafka_bootstrap: str, unique: str, invoke: Invoke) -> None:
    result = await invoke("-b", kafka_bootstrap, "recording", "show", "rec_1", "--topic", f"missing-{unique}")
    assert result.exit_code == 2
    assert f"unknown topic 'missing-{unique}'" in result.stderr


async def test_an_unreachable_broker_is_a_clear_failure(invoke: Invoke) -> None:
    for args in (("recording", "show", "rec_1"), ("dlq", "replay", "fetcher.dlq", "--all"), ("ready", "tail")):
        result = await invoke("-b", "127.0.0.1:1", *args, "--timeout", "20")
        assert result.exit_code == 1, result.output
        assert "cannot reach Kafka at 127.0.0.1:1" in result.stderr


# ---------------------------------------------------------------------------------------------------- dlq replay
async def dead_letters(kafka: KafkaTestClient, unique: str) -> tuple[str, str, list[list[tuple[str, bytes]]]]:
    """A DLQ-like topic holding three dead letters from a source topic, and one record that is not a dead letter."""
    dlq, source = f"{unique}.dlq", f"{unique}.source"
    await kafka.create_topic(dlq)
    await kafka.create_topic(source, partitions=3)
    originals = []
    for number in range(3):
        original = [
            *headers("transcript.done", f"ce-{number}-{unique}", f"k{number}"),
            ("traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01"),
        ]
        originals.append(original)
        dead = dlq_headers(
            original, reason=f"boom {number}", service="fetcher", topic=source, partition=number, offset=40 + number
        )
        await kafka.produce(dlq, [(f"k{number}".encode(), f"value-{number}".encode())], headers=dead)
    await kafka.produce(dlq, [(b"stray", b"not a dead letter")], headers=[("ce_id", b"x")])
    return dlq, source, originals


async def test_dlq_replay_sends_the_chosen_records_back_with_their_original_headers(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke
) -> None:
    dlq, source, originals = await dead_letters(kafka, unique)

    dry = await invoke("-b", kafka_bootstrap, "dlq", "replay", dlq, "--key", "k0", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert dry.stdout.startswith(f"would replay {dlq} 0@0 key=k0 -> {source}  (fetcher: boom 0)")
    assert sum((await kafka.end_offsets(source)).values()) == 0, "a dry run sent something"

    result = await invoke(
        "-b", kafka_bootstrap, "dlq", "replay", dlq, "--key", "k0", "--offset", "0:2", "--offset", "9"
    )
    assert result.exit_code == 0, result.output
    assert [line.split()[:5] for line in result.stdout.splitlines()] == [
        ["replayed", dlq, "0@0", "key=k0", "->"],
        ["replayed", dlq, "0@2", "key=k2", "->"],
    ]
    assert "note: no record at offset 9" in result.stderr
    assert f"replayed 2 of 2 matching record(s) from {dlq}" in result.stderr
    replayed = sorted(await kafka.consume(source, count=2), key=lambda record: record.key)
    assert [(record.key, record.value) for record in replayed] == [(b"k0", b"value-0"), (b"k2", b"value-2")]
    assert [list(record.headers) for record in replayed] == [originals[0], originals[2]]


async def test_dlq_replay_all_skips_what_is_not_a_dead_letter_and_says_so(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke
) -> None:
    dlq, source, _ = await dead_letters(kafka, unique)
    result = await invoke("-b", kafka_bootstrap, "dlq", "replay", dlq, "--all")
    assert result.exit_code == 1, result.output
    assert len(result.stdout.splitlines()) == 3
    assert f"skipped {dlq} 0@3 key=stray: no dlq-source-topic header" in result.stderr
    assert "1 matching record(s) could not be replayed" in result.stderr
    assert sorted(record.key for record in await kafka.consume(source, count=3)) == [b"k0", b"k1", b"k2"]


async def test_dlq_replay_failures(kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke) -> None:
    dlq, source, _ = await dead_letters(kafka, unique)
    nothing = await invoke("-b", kafka_bootstrap, "dlq", "replay", dlq, "--key", "nobody", "--offset", "77")
    assert nothing.exit_code == 1
    assert f"nothing matched in {dlq} (4 record(s) read)" in nothing.stderr
    assert "note: no record with key 'nobody'" in nothing.stderr
    unknown = await invoke("-b", kafka_bootstrap, "dlq", "replay", f"nope-{unique}.dlq", "--all")
    assert unknown.exit_code == 2
    assert f"unknown topic 'nope-{unique}.dlq'" in unknown.stderr
    assert "transcriber.dlq, fetcher.dlq" in unknown.stderr
    assert sum((await kafka.end_offsets(source)).values()) == 0


# ---------------------------------------------------------------------------------------------------- ready tail
@pytest.mark.usefixtures("lifecycle_topics")
async def test_ready_tail_from_the_beginning(
    kafka: KafkaTestClient, kafka_bootstrap: str, unique: str, invoke: Invoke
) -> None:
    rid = f"rec-{unique}"
    await put(kafka, TRANSCRIPTS_READY.name, rid, ready_event(rid, "tr_1"), READY_EVENT_TYPE, f"r1-{unique}")
    await put(kafka, TRANSCRIPTS_READY.name, rid, ready_event(rid, "tr_2"), READY_EVENT_TYPE, f"r2-{unique}")
    args = ("-b", kafka_bootstrap, "ready", "tail", "--from-beginning", "--key", rid, "--timeout", "30")
    result = await invoke(*args, "--max", "2")
    assert result.exit_code == 0, result.output
    assert [line.split()[2] for line in result.stdout.splitlines()] == ["transcript=tr_1", "transcript=tr_2"]
    assert "tailing transcripts.ready from the beginning" in result.stderr
    as_json = await invoke(*args, "--max", "1", "--json")
    assert json.loads(as_json.stdout)["value"]["transcript_id"] == "tr_1"


@pytest.mark.usefixtures("lifecycle_topics")
async def test_ready_tail_follows_new_events_only(kafka: KafkaTestClient, kafka_bootstrap: str, unique: str) -> None:
    rid = f"rec-{unique}"
    await put(kafka, TRANSCRIPTS_READY.name, rid, ready_event(rid, "tr_old"), READY_EVENT_TYPE, f"old-{unique}")
    env = {name: value for name, value in os.environ.items() if name not in CLI_VARIABLES}
    process = await asyncio.create_subprocess_exec(
        str(CONSOLE_SCRIPT),
        *("-b", kafka_bootstrap, "ready", "tail", "--key", rid, "--max", "1", "--timeout", "60"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        assert process.stderr is not None
        async with asyncio.timeout(30):
            banner = await process.stderr.readline()
        assert b"tailing transcripts.ready from the end" in banner
        await put(kafka, TRANSCRIPTS_READY.name, rid, ready_event(rid, "tr_new"), READY_EVENT_TYPE, f"new-{unique}")
        async with asyncio.timeout(30):
            stdout, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr
    assert "transcript=tr_new" in stdout.decode()
    assert "tr_old" not in stdout.decode()


@pytest.mark.usefixtures("lifecycle_topics")
async def test_ready_tail_exits_1_when_nothing_arrives(kafka_bootstrap: str, unique: str, invoke: Invoke) -> None:
    result = await invoke("-b", kafka_bootstrap, "ready", "tail", "--key", f"nobody-{unique}", "--timeout", "1")
    assert result.exit_code == 1
    assert "no transcripts.ready events within 1s" in result.stderr
    counted = await invoke(
        "-b", kafka_bootstrap, "ready", "tail", "--key", f"nobody-{unique}", "--max", "2", "--timeout", "1"
    )
    assert counted.exit_code == 1
    assert "got 0 of 2 event(s) within 1s" in counted.stderr
