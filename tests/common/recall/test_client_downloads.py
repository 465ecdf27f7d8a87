"""RecallClient's downloads (pre-signed URLs: caps, deadlines, allowed hosts, expiry) against the Recall simulator,
and against hostile servers on real loopback sockets (no mocked transports)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import pytest

from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import (
    ErrorKind,
    RecallDownloadExpired,
    RecallDownloadNotAllowed,
    RecallDownloadTooLarge,
    RecallInvalidResponse,
    RecallNotFound,
    RecallRequestTimeout,
    RecallResponseLost,
    RecallServerError,
)
from pipeline_common.recall.models import TranscriptArtifact, parse_transcript
from tests.common.recall.test_client import RECALL, done
from tests.support.http import raw_server
from tests.support.recall_sim import RunningSim, run_recall_sim, sim_settings

pytestmark = pytest.mark.integration

# --- downloads ------------------------------------------------------------------------------------------------------


async def _done_transcript(sim: RunningSim, recall: RecallClient, **spec: Any) -> TranscriptArtifact:
    recording = await sim.admin.create_recording(transcript=spec)
    created = await recall.create_transcript(recording["id"], RECALL)
    return await done(recall, created.id)


async def test_download_streams_large_transcripts_within_the_cap(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall, target_bytes=3_000_000)
        assert artifact.download_url
        chunks = [chunk async for chunk in recall.stream_download(artifact.download_url, max_bytes=10_000_000)]
        assert len(chunks) > 1
        data = b"".join(chunks)
        assert 3_000_000 <= len(data) < 3_100_000
        assert len(parse_transcript(data)) > 10
        with pytest.raises(RecallDownloadTooLarge) as caught:
            await recall.download(artifact.download_url, max_bytes=1_000_000)
    assert caught.value.kind is ErrorKind.TERMINAL
    assert "X-Sim-Signature" not in str(caught.value)  # pre-signed query strings never show


async def test_the_cap_holds_when_the_server_sends_no_content_length(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(download_chunked=True)
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall, target_bytes=1_000_000)
        assert artifact.download_url
        assert len(await recall.download(artifact.download_url, max_bytes=2_000_000)) >= 1_000_000
        received: list[int] = []

        async def consume(url: str) -> None:
            async for chunk in recall.stream_download(url, max_bytes=300_000):
                received.append(len(chunk))

        with pytest.raises(RecallDownloadTooLarge, match="body is over the 300000-byte limit"):
            await consume(artifact.download_url)
    assert sum(received) <= 300_000


async def test_an_empty_transcript_downloads_as_an_empty_list(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall, empty=True)
        assert artifact.download_url
        assert parse_transcript(await recall.download(artifact.download_url, 1000)) == []


async def test_expired_urls_are_refused_and_a_fresh_retrieve_fixes_it(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall)
        assert artifact.download_url
        await recall_sim.admin.advance_clock(3601)
        with pytest.raises(RecallDownloadExpired) as caught:
            await recall.download(artifact.download_url, 10_000_000)
        assert (caught.value.kind, caught.value.status) == (ErrorKind.RETRYABLE, 403)
        fresh = await recall.retrieve_transcript(artifact.id)
        assert fresh.download_url and fresh.download_url != artifact.download_url
        assert await recall.download(fresh.download_url, 10_000_000)
        with pytest.raises(RecallDownloadExpired):
            await recall.download(fresh.download_url.replace("X-Sim-Signature=", "X-Sim-Signature=x"), 10_000_000)


async def test_downloads_only_from_allowed_hosts(recall_sim: RunningSim) -> None:
    async with recall_sim.client(download_hosts=["*.s3.amazonaws.com", "localhost"]) as recall:
        for url in (
            f"{recall_sim.base_url}/files/transcripts/x.json",
            "file:///etc/passwd",
            "http://169.254.169.254/latest/meta-data/",
            "https://evil.s3.amazonaws.com.attacker.io/x",
            "gopher://localhost/",
            "not a url",
            "http://[::1/",
        ):
            with pytest.raises(RecallDownloadNotAllowed):
                await recall.download(url, 100)
    assert await recall_sim.admin.calls() == []


async def test_download_failures_are_typed(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall)
        assert artifact.download_url
        await recall_sim.admin.set_faults({"endpoints": {"download": {"fail_next": 1, "status": 503}}})
        with pytest.raises(RecallServerError):
            await recall.download(artifact.download_url, 10_000_000)
        await recall.delete_transcript(artifact.id)
        with pytest.raises(RecallNotFound):
            await recall.download(artifact.download_url, 10_000_000)


async def test_a_slow_download_hits_the_total_deadline() -> None:
    with run_recall_sim(sim_settings()) as sim:
        async with sim.client(download_timeout=0.3) as recall:
            artifact = await _done_transcript(sim, recall)
            assert artifact.download_url
            await sim.admin.set_faults({"endpoints": {"download": {"latency_seconds": 1}}})
            with pytest.raises(RecallRequestTimeout, match="download"):
                await recall.download(artifact.download_url, 10_000_000)


async def test_a_download_whose_answer_is_lost_is_asked_once_more_then_is_retryable(recall_sim: RunningSim) -> None:
    # A GET of a pre-signed URL has no effect: when its answer is lost (the connection closed without one), the client
    # asks once more on a fresh connection (as httpcore did for a pooled connection found closed); lost twice in a
    # row, the failure is RecallResponseLost, which the fetcher retries later.
    async with recall_sim.client() as recall:
        artifact = await _done_transcript(recall_sim, recall)
        assert artifact.download_url
        await recall_sim.admin.set_faults({"endpoints": {"download": {"drop_next": 1}}})
        assert await recall.download(artifact.download_url, 10_000_000)
        outcomes = [call["outcome"] for call in await recall_sim.admin.calls(endpoint="download")]
        assert outcomes[-2:] == ["dropped", "ok"]
        await recall_sim.admin.set_faults({"endpoints": {"download": {"drop_next": 2}}})
        with pytest.raises(RecallResponseLost):
            await recall.download(artifact.download_url, 10_000_000)
        assert await recall.download(artifact.download_url, 10_000_000)


# --- a hostile server (real sockets on loopback) --------------------------------------------------------------------


def endless_server(status: str) -> contextlib.AbstractAsyncContextManager[str]:
    """Answers every request with ``status`` and a chunked body of spaces that goes on for 64 MB."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        )
        chunk = b" " * 65536
        for _ in range(1024):
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()

    return raw_server(handle)


async def test_an_endless_api_response_is_cut_off() -> None:
    async with endless_server("200 OK") as url, RecallClient(api_key="k", base_url=url, timeout=5) as recall:
        with pytest.raises(RecallInvalidResponse, match="too large") as caught:
            await recall.retrieve_transcript("abc")
    assert caught.value.kind is ErrorKind.RETRYABLE


async def test_an_endless_error_body_is_not_read_to_the_end() -> None:
    async with endless_server("503 Service Unavailable") as url, RecallClient(api_key="k", base_url=url) as recall:
        with pytest.raises(RecallServerError) as caught:
            await recall.retrieve_transcript("abc")
        assert caught.value.detail is None
        with pytest.raises(RecallServerError):
            await recall.download(f"{url}/files/x.json?sig=1", max_bytes=10)
