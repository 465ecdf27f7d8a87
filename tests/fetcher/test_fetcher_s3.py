"""The fetcher with an s3:// store on a real S3-compatible server (moto's standalone server on loopback)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator

import boto3
import pytest

from pipeline_common.recall import render
from pipeline_common.recall.models import parse_transcript
from pipeline_common.store import TranscriptKeys
from tests.fetcher.conftest import start_worker
from tests.fetcher.support import DownloadProxy, FetcherWorker, Pipeline, wait_state
from tests.support.recall_sim import RunningSim

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("clean_faults")]


@pytest.fixture(scope="module")
def bucket(s3_endpoint: str) -> str:
    name = f"transcripts-{uuid.uuid4().hex[:8]}"
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="module")
def s3(s3_endpoint: str) -> Iterator[object]:
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    yield client
    client.close()


@pytest.fixture(scope="module")
def s3_worker(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    sim: RunningSim,
    proxy: DownloadProxy,
    s3_endpoint: str,
    bucket: str,
) -> Iterator[FetcherWorker]:
    worker = start_worker(
        tmp_path_factory,
        kafka_bootstrap,
        sim,
        f"s3://{bucket}/pipeline",
        TRANSCRIPT_STORE_S3_ENDPOINT_URL=s3_endpoint,
        TRANSCRIPT_STORE_S3_ADDRESSING_STYLE="path",
    )
    yield worker
    worker.stop()


def keys_under(s3: object, bucket: str, prefix: str) -> dict[str, bytes]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])  # type: ignore[attr-defined]
    return {item["Key"]: s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read() for item in found}  # type: ignore[attr-defined]


async def test_happy_path_with_the_s3_store(
    s3_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, s3: object, bucket: str
) -> None:
    transcript = await pipeline.make_transcript(words=500, speakers=4)
    await pipeline.publish(transcript)
    [event] = await pipeline.ready_events(transcript.transcript_id, worker=s3_worker)

    async with sim.client() as recall:
        artifact = await recall.retrieve_transcript(transcript.transcript_id)
        assert artifact.download_url is not None
        served = await recall.download(artifact.download_url, 10_000_000)
    prefix = f"pipeline/{TranscriptKeys(transcript.recording_id, transcript.transcript_id).prefix}"
    objects = keys_under(s3, bucket, prefix)
    assert set(objects) == {
        prefix + name
        for name in (
            "transcript.json",
            "readable.json",
            "transcript.txt",
            "transcript.vtt",
            "transcript.srt",
            "manifest.json",
        )
    }
    assert objects[prefix + "transcript.json"] == served
    assert event["raw"]["uri"] == f"s3://{bucket}/{prefix}transcript.json"
    parts = parse_transcript(served)
    assert objects[prefix + "transcript.vtt"] == render.render_vtt(parts).encode()
    for stored in (event["raw"], event["readable"], *event["renditions"].values()):
        key = stored["uri"].removeprefix(f"s3://{bucket}/")
        assert hashlib.sha256(objects[key]).hexdigest() == stored["sha256"]
        assert len(objects[key]) == stored["size_bytes"]
    head = s3.head_object(Bucket=bucket, Key=prefix + "transcript.srt")  # type: ignore[attr-defined]
    assert head["ContentType"].startswith("application/x-subrip")

    response = s3_worker.get(f"/transcripts/{transcript.transcript_id}", format="json")
    assert response.status_code == 200 and response.content == served
    assert s3_worker.get(f"/transcripts/{transcript.transcript_id}", format="txt").text == render.render_text(parts)
    await wait_state(s3_worker, transcript.recording_id, transcript.transcript_id, "ready")


async def test_nothing_half_written_in_s3_after_a_failure(
    s3_worker: FetcherWorker, pipeline: Pipeline, sim: RunningSim, s3: object, bucket: str
) -> None:
    transcript = await pipeline.make_transcript(words=40)
    await sim.admin.set_faults({"endpoints": {"download": {"garble_next": 1}}})
    await pipeline.publish(transcript)
    [record] = await pipeline.dlq_records(transcript.recording_id.encode(), worker=s3_worker)
    assert b"not valid JSON" in dict(record.headers)["dlq-reason"]
    assert keys_under(s3, bucket, f"pipeline/recordings/{transcript.recording_id}/") == {}
