"""The transcriber worker on a real broker with the Recall simulator: what Recall sees is what we assert."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import DefaultPartitioner

from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import TranscriptFailed
from pipeline_common.retries import RetryDue
from pipeline_common.topics import RECORDING_EVENTS, TRANSCRIBER_RETRIES, TRANSCRIPT_EVENTS
from pipeline_common.worker.table import SWEEP_TARGET
from tests.support.kafka import KafkaTestClient
from tests.support.waiting import wait_for
from tests.transcriber.conftest import Pipeline

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def recording_done_body(recording_id: str, bot_id: str) -> bytes:
    return json.dumps(
        {
            "event": "recording.done",
            "data": {
                "data": {"code": "done", "sub_code": None, "updated_at": datetime.now(UTC).isoformat()},
                "recording": {"id": recording_id, "metadata": {}},
                "bot": {"id": bot_id, "metadata": {}},
            },
        }
    ).encode()


async def produce_recording_done(kafka: KafkaTestClient, recording_id: str, bot_id: str, times: int = 1) -> None:
    headers = build_headers(
        CloudEventAttributes(id=f"msg_{uuid.uuid4().hex}", source="test", type="recording.done", subject=recording_id)
    )
    body = recording_done_body(recording_id, bot_id)
    await kafka.produce(RECORDING_EVENTS.name, [(recording_id.encode(), body)] * times, headers=headers)


async def test_happy_path_one_create_with_the_right_body_and_headers(pipeline: Pipeline) -> None:
    recording = await pipeline.sim.admin.create_recording(metadata={"team": "sales"})  # fires recording.done
    state = pipeline.worker.wait_status(recording["id"], "done")
    (call,) = await pipeline.create_transcript_calls(recording["id"])
    assert call["idempotency_key"] == f"recall-pipeline-{recording['id']}-attempt-1"
    assert call["status"] == 200  # the simulator answers 401 without the right "Token" key
    (transcript,) = await pipeline.sim.admin.transcripts(recording["id"])  # what Recall stored from the body
    assert transcript["provider"] == {"recallai_async": {"language_code": "auto"}}
    assert transcript["diarization"] == {"use_separate_streams_when_available": True}
    assert transcript["metadata"] == {
        "pipeline": "recall-pipeline",
        "pipeline_attempt": "1",
        "recording_id": recording["id"],
    }
    assert [a["outcome"] for a in state["attempts"]] == ["done"]
    assert 'transcriber_creates_total{outcome="created",provider="recallai_async"}' in pipeline.worker.metric(
        "transcriber_creates_total"
    )


async def test_duplicates_and_replays_after_a_restart_create_once(pipeline: Pipeline, kafka: KafkaTestClient) -> None:
    recording = await pipeline.sim.admin.create_recording(webhooks=False)
    await produce_recording_done(kafka, recording["id"], recording["bot"]["id"], times=5)
    pipeline.worker.wait_status(recording["id"], "done")
    pipeline.worker.stop()
    pipeline.worker.start()
    await produce_recording_done(kafka, recording["id"], recording["bot"]["id"], times=2)
    # A later recording proves the replays were consumed before we count.
    later = await pipeline.sim.admin.create_recording()
    pipeline.worker.wait_status(later["id"], "done")
    assert len(await pipeline.create_transcript_calls(recording["id"])) == 1
    assert len(await pipeline.sim.admin.transcripts(recording["id"])) == 1


async def test_fallback_then_exhaustion_emits_one_transcript_failed(pipeline: Pipeline, kafka: KafkaTestClient) -> None:
    await pipeline.sim.admin.set_faults({"provider_failures": {"recallai_async": "provider_connection_failed"}})
    rescued = await pipeline.sim.admin.create_recording()
    state = pipeline.worker.wait_status(rescued["id"], "done")
    assert [(a["provider"], a["outcome"]) for a in state["attempts"]] == [
        ("recallai_async", "failed"),
        ("deepgram_async", "done"),
    ]
    assert state["attempts"][0]["sub_code"] == "provider_connection_failed"

    await pipeline.sim.admin.set_faults(
        {
            "provider_failures": {
                "recallai_async": "provider_connection_failed",
                "deepgram_async": "provider_connection_failed",
            }
        }
    )
    doomed = await pipeline.sim.admin.create_recording()
    pipeline.worker.wait_status(doomed["id"], "failed")
    records = await kafka.consume(
        "transcripts.failed", until=lambda rs: any(r.key == doomed["id"].encode() for r in rs), timeout=30
    )
    (record,) = [r for r in records if r.key == doomed["id"].encode()]
    failed = TranscriptFailed.model_validate_json(record.value)
    assert failed.reason.value == "providers_exhausted"
    assert [(a.provider, a.sub_code) for a in failed.attempts] == [
        ("recallai_async", "provider_connection_failed"),
        ("deepgram_async", "provider_connection_failed"),
    ]
    assert dict(record.headers)["ce_id"] == f"transcript-failed:{doomed['id']}".encode()
    assert len(await pipeline.create_transcript_calls(doomed["id"])) == 2  # the chain's length, never more


def same_partition_ids(count: int) -> list[str]:
    partitioner = DefaultPartitioner()
    partitions = list(range(RECORDING_EVENTS.partitions))
    wanted: list[str] = []
    target: int | None = None
    while len(wanted) < count:
        candidate = str(uuid.uuid4())
        partition = partitioner(candidate.encode(), partitions, partitions)
        target = partition if target is None else target
        if partition == target:
            wanted.append(candidate)
    return wanted


async def test_a_rate_limited_create_waits_without_holding_up_its_partition(pipeline: Pipeline) -> None:
    slow_id, fast_id = same_partition_ids(2)
    await pipeline.sim.admin.set_faults(
        {"endpoints": {"create_transcript": {"fail_next": 1, "status": 429, "retry_after": 8}}}
    )
    await pipeline.sim.admin.create_recording(id=slow_id)
    pipeline.worker.wait_status(slow_id, "retry_scheduled", timeout=30)
    await pipeline.sim.admin.create_recording(id=fast_id)
    pipeline.worker.wait_status(fast_id, "done", timeout=30)
    # The fast recording, behind the slow one on the same partition, finished while the slow one still waited.
    assert pipeline.worker.state(slow_id)["status"] == "retry_scheduled"  # type: ignore[index]
    pipeline.worker.wait_status(slow_id, "done", timeout=60)
    calls = await pipeline.create_transcript_calls(slow_id)
    assert [c["status"] for c in calls] == [429, 200]
    assert len({c["idempotency_key"] for c in calls}) == 1


@pytest.mark.parametrize("fault", [{"fail_next": 2, "status": 503}, {"drop_next": 1}])
async def test_5xx_and_lost_responses_are_retried_with_the_same_key(pipeline: Pipeline, fault: dict[str, int]) -> None:
    await pipeline.sim.admin.set_faults({"endpoints": {"create_transcript": fault}})
    recording = await pipeline.sim.admin.create_recording()
    pipeline.worker.wait_status(recording["id"], "done", timeout=60)
    calls = await pipeline.create_transcript_calls(recording["id"])
    if "fail_next" in fault:
        assert [c["status"] for c in calls] == [503, 503, 200]
    # (A lost response may need no second call: transcript.done, matched by our metadata, can arrive first.)
    assert len({c["idempotency_key"] for c in calls}) == 1
    assert len(await pipeline.sim.admin.transcripts(recording["id"])) == 1  # one paid transcript


async def test_operator_errors_are_retried_slowly_and_made_loud(pipeline: Pipeline) -> None:
    await pipeline.sim.admin.set_faults({"endpoints": {"create_transcript": {"fail_next": 2, "status": 401}}})
    recording = await pipeline.sim.admin.create_recording()
    pipeline.worker.wait_status(recording["id"], "blocked", timeout=30)
    operator_problems = pipeline.worker.metric("transcriber_operator_problems_total")
    assert 'transcriber_operator_problems_total{kind="unauthorized"} 1.0' in operator_problems
    assert 'transcriber_recordings{state="blocked"} 1.0' in pipeline.worker.metric("transcriber_recordings{")
    pipeline.worker.wait_status(recording["id"], "done", timeout=60)


async def test_crash_between_requested_and_the_response_creates_no_duplicate(
    pipeline: Pipeline, kafka: KafkaTestClient
) -> None:
    # The restart below reads partitions with no committed offset from their start: commit each first, so it does not
    # read the whole session's history of these shared topics (a harmless record each: a poison event, dead-lettered,
    # and a wake-up of no recording the worker knows).
    group = pipeline.worker.env["TRANSCRIBER_APP_ID"]
    await kafka.commit_every_partition(group, RECORDING_EVENTS.name, RECORDING_EVENTS.partitions, lambda _: b"prime")
    await kafka.commit_every_partition(
        group,
        TRANSCRIBER_RETRIES.name,
        TRANSCRIBER_RETRIES.partitions,
        lambda key: RetryDue(key, SWEEP_TARGET, 0).dumps(),
    )
    await pipeline.sim.admin.set_faults({"endpoints": {"create_transcript": {"latency_seconds": 3}}})
    recording = await pipeline.sim.admin.create_recording()

    async def create_in_flight() -> bool:
        return bool(await pipeline.create_transcript_calls(recording["id"]))

    await wait_for(create_in_flight, timeout=30, message="create call reached Recall")
    pipeline.worker.kill()  # SIGKILL while Recall is still answering
    await pipeline.sim.admin.clear_faults()
    # As in production: a partition with no committed offset yet is read from its start, not from its end.
    pipeline.worker.env["TRANSCRIBER_AUTO_OFFSET_RESET"] = "earliest"
    pipeline.worker.start()
    pipeline.worker.wait_status(recording["id"], "done", timeout=90)
    calls = await pipeline.create_transcript_calls(recording["id"])
    assert len({c["idempotency_key"] for c in calls}) == 1
    assert len(await pipeline.sim.admin.transcripts(recording["id"])) == 1


async def test_poison_messages_go_to_the_dlq_and_the_next_event_is_processed(
    pipeline: Pipeline, kafka: KafkaTestClient
) -> None:
    marker = uuid.uuid4().hex
    poison = [b"not json " + marker.encode(), json.dumps({"event": "recording.done", "data": {}, "m": marker}).encode()]
    await kafka.produce(RECORDING_EVENTS.name, [(b"poison", value) for value in poison])
    recording = await pipeline.sim.admin.create_recording()
    pipeline.worker.wait_status(recording["id"], "done")
    records = await kafka.consume(
        "transcriber.dlq", until=lambda rs: sum(marker.encode() in r.value for r in rs) >= 2, timeout=30
    )
    mine = [r for r in records if marker.encode() in r.value]
    assert [r.value for r in mine] == poison
    headers = dict(mine[0].headers)
    assert b"not valid JSON" in headers["dlq-reason"]
    assert headers["dlq-source-topic"] == RECORDING_EVENTS.name.encode()
    assert "transcriber_dlq_total" in pipeline.worker.metric("transcriber_dlq_total")


@pytest.mark.worker_env(TRANSCRIBER_DEADLINE_SECONDS="2", TRANSCRIBER_SWEEP_SECONDS="0.5")
async def test_lost_transcript_webhooks_are_reconciled_and_a_slow_transcript_is_waited_for(
    pipeline: Pipeline, kafka: KafkaTestClient
) -> None:
    # Recall never delivers transcript.* (as if its retries gave up), and the transcript stays processing until told.
    await pipeline.sim.admin.configure(webhook_events=["recording.done"], transcript_delay_seconds=None)
    recording = await pipeline.sim.admin.create_recording()

    def checked_while_processing() -> bool:
        lines = pipeline.worker.metric("transcriber_reconciled_total").splitlines()
        return any('outcome="processing"' in line and float(line.rsplit(" ", 1)[1]) >= 2 for line in lines)

    await wait_for(checked_while_processing, timeout=60, message="the sweep found the transcript still processing")
    state = pipeline.worker.state(recording["id"])
    assert state is not None and state["status"] == "transcribing"  # waited for, not failed
    ((transcript),) = await pipeline.sim.admin.transcripts(recording["id"])
    await pipeline.sim.admin.finish_transcript(transcript["id"])
    pipeline.worker.wait_status(recording["id"], "done", timeout=60)
    records = await kafka.consume(
        TRANSCRIPT_EVENTS.name,
        until=lambda rs: any(r.key == recording["id"].encode() for r in rs),
        timeout=30,
    )
    (reconciled,) = [r for r in records if r.key == recording["id"].encode()]
    assert dict(reconciled.headers)["ce_id"] == f"reconciled:{transcript['id']}:done".encode()
    assert json.loads(reconciled.value)["event"] == "transcript.done"
    assert len(await pipeline.create_transcript_calls(recording["id"])) == 1
