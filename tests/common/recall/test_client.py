"""RecallClient against the Recall simulator under a real uvicorn server on loopback (no mocked transports)."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import (
    ErrorKind,
    RecallApiError,
    RecallBadRequest,
    RecallConnectionError,
    RecallForbidden,
    RecallIdempotencyConflict,
    RecallInvalidArgument,
    RecallInvalidResponse,
    RecallNotFound,
    RecallPaymentRequired,
    RecallRateLimited,
    RecallRequestTimeout,
    RecallResponseLost,
    RecallServerError,
    RecallTranscriptLimitReached,
    RecallUnauthorized,
)
from pipeline_common.recall.models import Diarization, TranscriptArtifact, parse_transcript
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.recall.render import word_count
from pipeline_common.settings import RecallApiSettings
from tests.support.recall_sim import RunningSim
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

RECALL = {"recallai_async": {"language_code": "auto"}}


async def done(client: RecallClient, transcript_id: str) -> TranscriptArtifact:
    async def finished() -> TranscriptArtifact | None:
        artifact = await client.retrieve_transcript(transcript_id)
        return None if artifact.is_processing else artifact

    return await wait_for(finished, timeout=10, interval=0.02, message="transcript finished")


async def test_the_async_transcription_flow(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording(metadata={"team": "sales"}, transcript={"words": 300})
    async with recall_sim.client() as recall:
        created = await recall.create_transcript(
            recording["id"],
            ProviderConfig.of("deepgram_async", {"model": "nova-3", "language": "multi"}),
            diarization=Diarization(use_separate_streams_when_available=False),
            metadata={"attempt": "1"},
            idempotency_key="rec-1-attempt-1",
        )
        assert created.is_processing and created.download_url is None
        assert created.recording_id == recording["id"] and created.bot_id == recording["bot"]["id"]
        assert created.provider == {"deepgram_async": {"model": "nova-3", "language": "multi"}}
        assert created.metadata_dict == {"attempt": "1"}
        assert created.diarization == Diarization(use_separate_streams_when_available=False)

        artifact = await done(recall, created.id)
        assert artifact.is_done and artifact.download_url and artifact.provider_data_download_url
        data = await recall.download(artifact.download_url, max_bytes=10_000_000)
        parts = parse_transcript(data)
        assert word_count(parts) >= 290
        assert len({part.participant.id for part in parts if part.participant}) >= 2
        assert await recall.download(artifact.download_url, 10_000_000) == data  # deterministic
        assert (await recall.download(artifact.provider_data_download_url, 10_000))[:1] == b"{"

        found = await recall.retrieve_recording(recording["id"])
        assert found.is_done and found.bot_id == recording["bot"]["id"]
        assert found.metadata_dict == {"team": "sales"}
        assert found.media_shortcuts is not None and found.media_shortcuts["transcript"]["id"] == created.id

    downloads = await recall_sim.admin.calls(endpoint="download")
    assert downloads and not any(call["authorization_sent"] for call in downloads)  # the key stays with the API


async def test_the_recall_provider_and_separate_streams_expose_no_provider_data(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        created = await recall.create_transcript(recording["id"], RECALL)
        assert (await done(recall, created.id)).provider_data_download_url is None


async def test_from_settings(recall_sim: RunningSim) -> None:
    settings = RecallApiSettings(recall_api_base_url=recall_sim.base_url + "/", recall_api_key=recall_sim.api_key)
    async with RecallClient.from_settings(settings) as recall:
        assert recall.base_url == recall_sim.base_url
        assert await recall.list_transcripts() == []
    with pytest.raises(ValueError, match="RECALL_API_KEY"):
        RecallClient.from_settings(RecallApiSettings(recall_api_key=None))


async def test_list_follows_pagination(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(page_size=2, transcript_delay_seconds=None)
    recording = await recall_sim.admin.create_recording()
    other = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        ids = [(await recall.create_transcript(recording["id"], RECALL)).id for _ in range(5)]
        await recall.create_transcript(other["id"], RECALL)
        listed = await recall.list_transcripts(recording_id=recording["id"])
        assert [item.id for item in listed] == ids
        assert len(await recall.list_transcripts()) == 6
        assert await recall.list_transcripts(recording_id="no-such-recording") == []
    assert len(await recall_sim.admin.calls(endpoint="list_transcripts", recording_id=recording["id"])) == 3


async def test_pagination_never_leaves_the_api_origin(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(page_size=1, transcript_delay_seconds=None, public_url="http://attacker.invalid")
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        for _ in range(2):
            await recall.create_transcript(recording["id"], RECALL)
        with pytest.raises(RecallInvalidResponse, match="outside the API") as caught:
            await recall.list_transcripts(recording_id=recording["id"])
    assert caught.value.kind is ErrorKind.RETRYABLE


async def test_delete(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        created = await recall.create_transcript(recording["id"], RECALL)
        await recall.delete_transcript(created.id)
        with pytest.raises(RecallNotFound):
            await recall.retrieve_transcript(created.id)
        with pytest.raises(RecallNotFound) as caught:
            await recall.delete_transcript(created.id)
    assert caught.value.kind is ErrorKind.TERMINAL and caught.value.status == 404
    await recall_sim.admin.wait_for_deliveries(1, event="transcript.deleted", state=None)


async def test_idempotency_key_replays_the_first_answer(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        first = await recall.create_transcript(recording["id"], RECALL, idempotency_key="k-1")
        again = await recall.create_transcript(recording["id"], RECALL, idempotency_key="k-1")
        other = await recall.create_transcript(recording["id"], RECALL, idempotency_key="k-2")
    assert again.id == first.id != other.id
    assert len(await recall_sim.admin.transcripts(recording["id"])) == 2


async def test_a_lost_response_is_retryable_and_the_retry_does_not_pay_twice(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    await recall_sim.admin.set_faults({"endpoints": {"create_transcript": {"drop_next": 1}}})
    async with recall_sim.client() as recall:
        with pytest.raises(RecallResponseLost) as caught:
            await recall.create_transcript(recording["id"], RECALL, idempotency_key="rec-attempt-1")
        assert caught.value.kind is ErrorKind.RETRYABLE and caught.value.status is None
        retried = await recall.create_transcript(recording["id"], RECALL, idempotency_key="rec-attempt-1")
    (transcript,) = await recall_sim.admin.transcripts(recording["id"])
    assert retried.id == transcript["id"]
    outcomes = [call["outcome"] for call in await recall_sim.admin.calls(endpoint="create_transcript")]
    assert outcomes == ["dropped", "replayed"]


async def test_a_duplicate_in_flight_gets_409(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    await recall_sim.admin.set_faults({"endpoints": {"create_transcript": {"latency_seconds": 0.5}}})
    async with recall_sim.client() as recall:
        first = asyncio.create_task(recall.create_transcript(recording["id"], RECALL, idempotency_key="same"))
        await wait_for(
            lambda: recall_sim.admin.calls(endpoint="create_transcript"), timeout=5, interval=0.01, message="first call"
        )
        with pytest.raises(RecallIdempotencyConflict) as caught:
            await recall.create_transcript(recording["id"], RECALL, idempotency_key="same")
        assert (caught.value.status, caught.value.kind) == (409, ErrorKind.RETRYABLE)
        created = await first
    assert [t["id"] for t in await recall_sim.admin.transcripts(recording["id"])] == [created.id]


async def test_the_ten_transcript_limit_is_terminal(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(transcript_delay_seconds=None)
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        for _ in range(10):
            await recall.create_transcript(recording["id"], RECALL)
        with pytest.raises(RecallTranscriptLimitReached) as caught:
            await recall.create_transcript(recording["id"], RECALL)
        assert caught.value.kind is ErrorKind.TERMINAL and caught.value.status == 400
        assert "Maximum number of transcripts (10)" in str(caught.value)
        # Deleting one frees a slot, as Recall's docs say.
        first = (await recall.list_transcripts(recording_id=recording["id"]))[0]
        await recall.delete_transcript(first.id)
        await recall.create_transcript(recording["id"], RECALL)
    assert len(await recall_sim.admin.transcripts(recording["id"])) == 11


async def test_per_bot_rate_limit_carries_retry_after(recall_sim: RunningSim) -> None:
    await recall_sim.admin.configure(create_per_bot_per_window=2, rate_window_seconds=60)
    recording = await recall_sim.admin.create_recording()
    other_bot = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        for _ in range(2):
            await recall.create_transcript(recording["id"], RECALL)
        with pytest.raises(RecallRateLimited) as caught:
            await recall.create_transcript(recording["id"], RECALL)
        assert caught.value.kind is ErrorKind.RETRYABLE and caught.value.status == 429
        assert caught.value.retry_after is not None and 55 <= caught.value.retry_after <= 60
        await recall.create_transcript(other_bot["id"], RECALL)  # the limit is per bot
        await recall_sim.admin.advance_clock(61)
        await recall.create_transcript(recording["id"], RECALL)


@pytest.mark.parametrize(
    ("fault", "error", "kind", "retry_after"),
    [
        ({"status": 429, "retry_after": 7}, RecallRateLimited, ErrorKind.RETRYABLE, 7.0),
        ({"status": 429}, RecallRateLimited, ErrorKind.RETRYABLE, 1.0),
        ({"status": 500}, RecallServerError, ErrorKind.RETRYABLE, None),
        ({"status": 502}, RecallServerError, ErrorKind.RETRYABLE, None),
        ({"status": 503, "retry_after": 30}, RecallServerError, ErrorKind.RETRYABLE, 30.0),
        ({"status": 504}, RecallServerError, ErrorKind.RETRYABLE, None),
        ({"status": 401}, RecallUnauthorized, ErrorKind.OPERATOR, None),
        ({"status": 402}, RecallPaymentRequired, ErrorKind.OPERATOR, None),
        ({"status": 403}, RecallForbidden, ErrorKind.FIREWALL, None),
        ({"status": 400}, RecallBadRequest, ErrorKind.TERMINAL, None),
        ({"status": 404}, RecallNotFound, ErrorKind.TERMINAL, None),
    ],
)
async def test_every_status_becomes_a_typed_error(
    recall_sim: RunningSim,
    fault: dict[str, Any],
    error: type[RecallApiError],
    kind: ErrorKind,
    retry_after: float | None,
) -> None:
    recording = await recall_sim.admin.create_recording()
    endpoints = ("retrieve_recording", "list_transcripts", "create_transcript")
    await recall_sim.admin.set_faults({"endpoints": {name: {**fault, "fail_next": 1} for name in endpoints}})
    async with recall_sim.client() as recall:
        calls = (
            recall.retrieve_recording(recording["id"]),
            recall.list_transcripts(),
            recall.create_transcript(recording["id"], RECALL),
        )
        for call in calls:
            with pytest.raises(error) as caught:
                await call
            assert (caught.value.kind, caught.value.status, caught.value.retry_after) == (
                kind,
                fault["status"],
                retry_after,
            )
        await recall.retrieve_recording(recording["id"])  # fail_next: 1 is used up


async def test_wrong_key_is_an_operator_problem_and_the_key_never_leaks(recall_sim: RunningSim) -> None:
    async with RecallClient(api_key="wrong-key-123456", base_url=recall_sim.base_url) as recall:
        with pytest.raises(RecallUnauthorized) as caught:
            await recall.retrieve_transcript("abc")
    assert caught.value.kind is ErrorKind.OPERATOR and caught.value.status == 401
    assert "Invalid token" in str(caught.value)
    for text in (str(caught.value), repr(caught.value), repr(recall)):
        assert "wrong-key-123456" not in text
        assert recall_sim.api_key not in text
    calls = await recall_sim.admin.calls()
    assert [call["outcome"] for call in calls] == ["unauthorized"]


async def test_missing_things_are_not_found(recall_sim: RunningSim) -> None:
    async with recall_sim.client() as recall:
        with pytest.raises(RecallNotFound):
            await recall.retrieve_transcript("00000000-0000-0000-0000-000000000000")
        with pytest.raises(RecallNotFound):
            await recall.retrieve_recording("nope")
        with pytest.raises(RecallNotFound):
            await recall.create_transcript("nope", RECALL)


async def test_recall_validation_errors_are_terminal(recall_sim: RunningSim) -> None:
    processing = await recall_sim.admin.create_recording(status="processing")
    async with recall_sim.client() as recall:
        with pytest.raises(RecallBadRequest, match="Recording is not done") as caught:
            await recall.create_transcript(processing["id"], RECALL)
    assert caught.value.kind is ErrorKind.TERMINAL


async def test_bad_arguments_never_reach_recall(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    async with recall_sim.client() as recall:
        for bad_id in ("", "../bot", "a/b", "x" * 200, "id?x=1", "id with space"):
            with pytest.raises(RecallInvalidArgument):
                await recall.retrieve_transcript(bad_id)
            with pytest.raises(RecallInvalidArgument):
                await recall.create_transcript(bad_id, RECALL)
        with pytest.raises(RecallInvalidArgument, match="exactly one provider"):
            await recall.create_transcript(recording["id"], {"recallai_async": {}, "rev_async": {}})
        with pytest.raises(RecallInvalidArgument, match="unknown provider"):
            await recall.create_transcript(recording["id"], {"openai_async": {}})
        with pytest.raises(RecallInvalidArgument, match="idempotency_key"):
            await recall.create_transcript(recording["id"], RECALL, idempotency_key="has space")
        with pytest.raises(RecallInvalidArgument, match="metadata"):
            await recall.create_transcript(recording["id"], RECALL, metadata={"x": object()})
    assert await recall_sim.admin.calls() == []
    assert issubclass(RecallInvalidArgument, ValueError)


async def test_timeouts_are_retryable(recall_sim: RunningSim) -> None:
    await recall_sim.admin.set_faults({"endpoints": {"retrieve_transcript": {"latency_seconds": 1.0}}})
    async with recall_sim.client(timeout=0.2) as recall:
        with pytest.raises(RecallRequestTimeout) as caught:
            await recall.retrieve_transcript("abc")
    assert caught.value.kind is ErrorKind.RETRYABLE


async def test_connection_errors_are_retryable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused
        async with RecallClient(api_key="k", base_url=f"http://127.0.0.1:{port}", timeout=2) as recall:
            with pytest.raises(RecallConnectionError) as caught:
                await recall.retrieve_recording("abc")
    assert caught.value.kind is ErrorKind.RETRYABLE and caught.value.status is None


async def test_a_garbled_2xx_is_an_invalid_response(recall_sim: RunningSim) -> None:
    recording = await recall_sim.admin.create_recording()
    await recall_sim.admin.set_faults({"endpoints": {"retrieve_recording": {"garble_next": 1}}})
    async with recall_sim.client() as recall:
        with pytest.raises(RecallInvalidResponse, match="not the documented shape") as caught:
            await recall.retrieve_recording(recording["id"])
    assert caught.value.kind is ErrorKind.RETRYABLE and caught.value.status == 200


@pytest.mark.parametrize(
    ("metadata", "reason"),
    [
        ({"team": {"nested": "x"}}, "string"),
        ({"attempt": 3}, "string"),
        ({"note": "x" * 501}, "500"),
        ({"k" * 501: "v"}, "500"),
        ({"ok": None}, "string"),
    ],
)
async def test_metadata_recall_would_refuse_is_refused_before_the_call(
    recall_sim: RunningSim, metadata: dict[str, Any], reason: str
) -> None:
    # Issue 14 item 7: Recall's custom metadata is string keys and values, at most 500 characters, no nesting.
    async with recall_sim.client() as recall:
        recording = await recall_sim.admin.create_recording()
        with pytest.raises(RecallInvalidArgument, match=reason):
            await recall.create_transcript(recording["id"], RECALL, metadata=metadata)
        assert await recall_sim.admin.calls(endpoint="create_transcript") == []
        created = await recall.create_transcript(recording["id"], RECALL, metadata={"note": "x" * 500})
        assert created.metadata == {"note": "x" * 500}
