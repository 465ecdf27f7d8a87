"""The fetcher worker against the real broker, the Recall simulator and a file:// store: the happy path, duplicates,
and every failure the issue lists, each ending as documented with nothing half-written in the store.

One worker serves the whole module (it takes seconds to start); each test uses its own recordings and transcripts,
and faults are cleared before each test.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from pipeline_common.cloudevents import header_value
from pipeline_common.contracts import FailureReason, TranscriptFailed, TranscriptReady
from pipeline_common.recall import render
from pipeline_common.recall.models import parse_transcript
from pipeline_common.store import TranscriptKeys
from pipeline_common.topics import TRANSCRIPTS_FAILED
from tests.fetcher.conftest import MAX_TRANSCRIPT_BYTES
from tests.fetcher.support import DownloadProxy, FetcherWorker, Pipeline, SimTranscript, wait_state
from tests.support.recall_sim import RunningSim

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]


async def served_bytes(sim: RunningSim, transcript_id: str) -> bytes:
    async with sim.client() as recall:
        artifact = await recall.retrieve_transcript(transcript_id)
        assert artifact.download_url is not None
        return await recall.download(artifact.download_url, 100 * 1024 * 1024)


def stored_files(root: Path, transcript: SimTranscript) -> dict[str, Path]:
    folder = root / TranscriptKeys(transcript.recording_id, transcript.transcript_id).prefix
    return {path.name: path for path in folder.iterdir()} if folder.exists() else {}


def assert_nothing_stored(root: Path, transcript: SimTranscript) -> None:
    assert stored_files(root, transcript) == {}
    assert not (root / TranscriptKeys.index(transcript.transcript_id)).exists()
    assert [p for p in (root / ".staging").iterdir()] == [] if (root / ".staging").exists() else True


def uri_path(uri: str) -> Path:
    assert uri.startswith("file://")
    return Path(uri.removeprefix("file://"))


async def test_happy_path_stores_verified_transcript_and_announces_it_once(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=300, speakers=3, provider="deepgram_async", attempt=2)
    await pipeline.publish(transcript)
    [event] = await pipeline.ready_events(transcript.transcript_id, worker=file_worker)

    ready = TranscriptReady.model_validate({k: v for k, v in event.items() if not k.startswith("_")})
    served = await served_bytes(sim, transcript.transcript_id)
    raw_path = uri_path(ready.raw.uri)
    assert raw_path.read_bytes() == served  # byte for byte what Recall served
    assert ready.raw.sha256 == hashlib.sha256(served).hexdigest()
    assert ready.raw.size_bytes == len(served)
    parts = parse_transcript(served)
    expected = {
        "readable": render.render_readable_json(parts),
        "txt": render.render_text(parts),
        "vtt": render.render_vtt(parts),
        "srt": render.render_srt(parts),
    }
    objects = {"readable": ready.readable, **ready.renditions}
    assert set(objects) == set(expected)
    for name, stored in objects.items():
        data = uri_path(stored.uri).read_bytes()
        assert data == expected[name].encode(), name
        assert stored.sha256 == hashlib.sha256(data).hexdigest() and stored.size_bytes == len(data)
    assert ready.word_count == render.word_count(parts) > 0
    assert ready.speech_duration_seconds == render.speech_duration(parts)
    assert [p.name for p in ready.participants] == [p.name for p in render.speakers(parts)]
    assert ready.language_codes == ["en"]
    assert (ready.recording_id, ready.transcript_id, ready.provider, ready.attempt) == (
        transcript.recording_id,
        transcript.transcript_id,
        "deepgram_async",
        2,
    )
    assert ready.recording_metadata == {"team": "fetcher-tests"}
    assert ready.transcript_metadata["pipeline_attempt"] == "2"
    # deepgram (without separate streams) has provider data, and this worker is configured to keep it
    assert ready.provider_data is not None and uri_path(ready.provider_data.uri).exists()

    files = stored_files(file_store_root, transcript)
    assert set(files) == {
        "transcript.json",
        "readable.json",
        "transcript.txt",
        "transcript.vtt",
        "transcript.srt",
        "provider_data.json",
        "manifest.json",
    }
    manifest = json.loads(files["manifest.json"].read_bytes())
    for name, stored in manifest["objects"].items():
        data = uri_path(stored["uri"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == stored["sha256"] and len(data) == stored["size_bytes"], name

    headers = dict(event["_headers"])
    assert headers["ce_type"] == b"ai.recall.pipeline.transcript.ready"
    assert headers["ce_subject"] == transcript.recording_id.encode()
    assert header_value(event["_headers"], "ce_id") == f"transcript-ready:{transcript.transcript_id}".encode()

    state = await wait_state(file_worker, transcript.recording_id, transcript.transcript_id, "ready")
    assert state["manifest_uri"].endswith("manifest.json") and state["word_count"] == ready.word_count

    # the read API serves every form from the store
    for fmt, stored in (("json", ready.raw), ("readable", ready.readable), *ready.renditions.items()):
        response = file_worker.get(f"/transcripts/{transcript.transcript_id}", format=fmt)
        assert response.status_code == 200, fmt
        assert response.content == uri_path(stored.uri).read_bytes()
        assert response.headers["content-type"].startswith(stored.content_type.split(";")[0])
    assert file_worker.get(f"/transcripts/{transcript.transcript_id}", format="pdf").status_code == 400
    assert file_worker.get("/transcripts/no-such-transcript").status_code == 404
    assert file_worker.get("/recordings/no-such-recording").status_code == 404


async def test_duplicates_are_suppressed(file_worker: FetcherWorker, pipeline: Pipeline, file_store_root: Path) -> None:
    transcript = await pipeline.make_transcript(words=50)
    await pipeline.publish(transcript)
    await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    before = {name: path.read_bytes() for name, path in stored_files(file_store_root, transcript).items()}
    # the same delivery again, and a Recall retry of it with another webhook id
    await pipeline.publish(transcript)
    await pipeline.publish(transcript, webhook_id=f"msg_{uuid.uuid4().hex}")

    async def suppressed() -> bool:
        doc = file_worker.transcript_state(transcript.recording_id, transcript.transcript_id)
        return doc is not None and doc["duplicates"] >= 2

    from tests.support.waiting import wait_for

    await wait_for(suppressed, timeout=30, message="both duplicates seen")
    assert len(await pipeline.all_ready(transcript.transcript_id)) == 1
    after = {name: path.read_bytes() for name, path in stored_files(file_store_root, transcript).items()}
    assert after == before


async def test_empty_transcript_is_stored_and_announced_with_zero_words(
    file_worker: FetcherWorker, pipeline: Pipeline
) -> None:
    transcript = await pipeline.make_transcript(empty=True)
    await pipeline.publish(transcript)
    [event] = await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    assert event["word_count"] == 0 and event["speech_duration_seconds"] == 0
    assert event["participants"] == [] and event["language_codes"] == []
    assert uri_path(event["raw"]["uri"]).read_bytes() == b"[]"
    assert uri_path(event["renditions"]["txt"]["uri"]).read_bytes() == b""
    assert uri_path(event["renditions"]["vtt"]["uri"]).read_bytes() == b"WEBVTT\n"


async def test_refused_download_url_is_retrieved_again(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.set_faults({"endpoints": {"download": {"fail_next": 1, "status": 403}}})
    await pipeline.publish(transcript)
    await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    retrieves = await sim.admin.calls(endpoint="retrieve_transcript", transcript_id=transcript.transcript_id)
    downloads = await sim.admin.calls(endpoint="download", transcript_id=transcript.transcript_id)
    assert [c["status"] for c in downloads][:2] == [403, 200]
    assert len(retrieves) >= 2  # a fresh URL for the second download


async def test_expired_download_url_is_retrieved_again(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    # Every URL the simulator signs now expires at once; the fetcher keeps asking for fresh ones, then backs off.
    await sim.admin.configure(download_url_ttl_seconds=0.000001)
    try:
        await pipeline.publish(transcript)
        state = await wait_state(file_worker, transcript.recording_id, transcript.transcript_id, "retry_scheduled")
        assert "refused" in state["last_error"]
    finally:
        await sim.admin.configure(download_url_ttl_seconds=3600)
    await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    downloads = await sim.admin.calls(endpoint="download", transcript_id=transcript.transcript_id)
    assert "ExpiredToken" in {c["outcome"] for c in downloads}


@pytest.mark.parametrize(
    ("faults", "endpoint"),
    [
        ({"endpoints": {"retrieve_transcript": {"fail_next": 2, "status": 503}}}, "retrieve_transcript"),
        ({"endpoints": {"download": {"fail_next": 2, "status": 500}}}, "download"),
    ],
    ids=["5xx-on-retrieve", "5xx-on-download"],
)
async def test_server_errors_are_retried_later(
    file_worker: FetcherWorker,
    pipeline: Pipeline,
    sim: RunningSim,
    file_store_root: Path,
    faults: dict[str, Any],
    endpoint: str,
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.set_faults(faults)
    await pipeline.publish(transcript)
    await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    calls = await sim.admin.calls(endpoint=endpoint, transcript_id=transcript.transcript_id)
    assert [c["status"] for c in calls][:3] == [faults["endpoints"][endpoint]["status"]] * 2 + [200]
    state = await wait_state(file_worker, transcript.recording_id, transcript.transcript_id, "ready")
    assert state["attempts"] == 2
    assert len(await pipeline.all_ready(transcript.transcript_id)) == 1


async def test_connection_dropped_mid_download_is_retried(
    file_worker: FetcherWorker, pipeline: Pipeline, proxy: DownloadProxy, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=2000)
    proxy.cut_next = 1
    await pipeline.publish(transcript)
    [event] = await pipeline.ready_events(transcript.transcript_id, worker=file_worker)
    assert proxy.requests.count(f"/files/transcripts/{transcript.transcript_id}.json") >= 2
    raw = uri_path(event["raw"]["uri"]).read_bytes()
    assert len(raw) == event["raw"]["size_bytes"] and hashlib.sha256(raw).hexdigest() == event["raw"]["sha256"]


async def test_a_waiting_retry_does_not_block_the_partition(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim
) -> None:
    slow = await pipeline.make_transcript(words=30)
    # a second transcript of the same recording: same key, same partition
    async with sim.client() as recall:
        artifact = await recall.create_transcript(slow.recording_id, {"recallai_async": {"language_code": "en"}})
    deliveries = await sim.admin.wait_for_deliveries(
        1, state=None, transcript_id=artifact.id, event="transcript.done", timeout=15
    )
    fast = SimTranscript(
        slow.recording_id, artifact.id, json.dumps(deliveries[0]["body"]).encode(), deliveries[0]["id"]
    )
    await sim.admin.set_faults(
        {"endpoints": {"retrieve_transcript": {"fail_next": 1, "status": 429, "retry_after": 600}}}
    )
    await pipeline.publish(slow)
    await wait_state(file_worker, slow.recording_id, slow.transcript_id, "retry_scheduled")
    await pipeline.publish(fast)
    await pipeline.ready_events(fast.transcript_id, worker=file_worker)
    state = file_worker.transcript_state(slow.recording_id, slow.transcript_id)
    assert state is not None and state["status"] == "retry_scheduled"
    # transcript.deleted cancels the waiting retry (and keeps this test's leftovers out of the next tests)
    deleted = json.loads(slow.body)
    deleted["event"] = "transcript.deleted"
    deleted["data"]["data"]["code"] = "deleted"
    await pipeline.publish(slow, body=json.dumps(deleted).encode(), webhook_id=f"msg_{uuid.uuid4().hex}")
    await wait_state(file_worker, slow.recording_id, slow.transcript_id, "gone")


async def test_deleted_transcript_ends_its_recording_with_transcripts_failed(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    async with sim.client() as recall:
        await recall.delete_transcript(transcript.transcript_id)
    await pipeline.publish(transcript)
    state = await wait_state(file_worker, transcript.recording_id, transcript.transcript_id, "gone")
    assert "404" in state["last_error"] or "deleted" in state["last_error"]
    ce_id = f"transcript-failed:{transcript.recording_id}".encode()

    def mine(records: list[Any]) -> list[Any]:
        return [r for r in records if header_value(list(r.headers or ()), "ce_id") == ce_id]

    records = await pipeline.records(TRANSCRIPTS_FAILED.name, until=lambda rs: bool(mine(rs)), worker=file_worker)
    (failed,) = mine(records)
    event = TranscriptFailed.model_validate_json(failed.value)
    assert event.reason is FailureReason.TRANSCRIPT_GONE
    assert [a.transcript_id for a in event.attempts] == [transcript.transcript_id]
    assert await pipeline.all_ready(transcript.transcript_id) == []
    assert_nothing_stored(file_store_root, transcript)


async def dead_lettered(pipeline: Pipeline, worker: FetcherWorker, transcript: SimTranscript) -> str:
    [record] = await pipeline.dlq_records(transcript.recording_id.encode(), worker=worker)
    assert record.value == transcript.body  # the original message, replayable
    headers = dict(record.headers)
    assert headers["dlq-source-topic"] == b"recall.transcript.events"
    await wait_state(worker, transcript.recording_id, transcript.transcript_id, "rejected")
    return headers["dlq-reason"].decode()


async def test_disallowed_download_host_is_dead_lettered(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, proxy: DownloadProxy, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.configure(public_url=proxy.localhost_url)  # "localhost" is not on the allowlist
    try:
        await pipeline.publish(transcript)
        reason = await dead_lettered(pipeline, file_worker, transcript)
    finally:
        await sim.admin.configure(public_url=proxy.url)
    assert "not in the allowed list" in reason
    assert proxy.requests.count(f"/files/transcripts/{transcript.transcript_id}.json") == 0  # never contacted
    assert await pipeline.all_ready(transcript.transcript_id) == []
    assert_nothing_stored(file_store_root, transcript)


async def test_invalid_json_is_dead_lettered(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.set_faults({"endpoints": {"download": {"garble_next": 1}}})  # a 200 with an HTML page
    await pipeline.publish(transcript)
    reason = await dead_lettered(pipeline, file_worker, transcript)
    assert "not valid JSON" in reason
    assert_nothing_stored(file_store_root, transcript)


async def test_transcript_failing_validation_is_dead_lettered(
    file_worker: FetcherWorker, pipeline: Pipeline, proxy: DownloadProxy, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    proxy.replace_body = b'[{"participant": null, "language_code": "en", "words": []}, {"words": [{"text": 42}]}]'
    await pipeline.publish(transcript)
    reason = await dead_lettered(pipeline, file_worker, transcript)
    assert "transcript part [1]" in reason and "words[0].text" in reason
    assert_nothing_stored(file_store_root, transcript)


async def test_over_cap_transcript_is_rejected_cleanly(
    file_worker: FetcherWorker, pipeline: Pipeline, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(target_bytes=MAX_TRANSCRIPT_BYTES + 500_000)
    await pipeline.publish(transcript)
    reason = await dead_lettered(pipeline, file_worker, transcript)
    assert "limit" in reason
    assert_nothing_stored(file_store_root, transcript)


async def test_retryable_failures_give_up_into_the_dlq(
    file_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, file_store_root: Path
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.set_faults({"endpoints": {"retrieve_transcript": {"fail_next": 50, "status": 502}}})
    await pipeline.publish(transcript)
    reason = await dead_lettered(pipeline, file_worker, transcript)
    assert reason.startswith("gave up after 4 attempts")
    assert_nothing_stored(file_store_root, transcript)


async def test_poison_message_goes_to_the_dlq(file_worker: FetcherWorker, pipeline: Pipeline) -> None:
    key = f"poison-{uuid.uuid4().hex[:8]}".encode()
    await pipeline.produce(
        key, b'{"event": "transcript.done", "data": {}}', f"msg_{uuid.uuid4().hex}", "transcript.done"
    )
    [record] = await pipeline.dlq_records(key, worker=file_worker)
    assert b"data.data" in dict(record.headers)["dlq-reason"]


async def test_metrics_and_health(file_worker: FetcherWorker) -> None:
    assert file_worker.get("/healthz").json() == {"status": "alive"}
    assert file_worker.get("/readyz").status_code == 200
    text = file_worker.metrics()
    for name in (
        "fetcher_downloads_total",
        "fetcher_download_bytes_total",
        "fetcher_download_seconds_bucket",
        "fetcher_store_seconds_bucket",
        "fetcher_end_to_end_seconds_bucket",
        "fetcher_dlq_total",
    ):
        assert name in text, name
