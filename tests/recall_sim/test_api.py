"""The simulator's Recall API, checked at the HTTP level (status codes, headers, bodies) under real uvicorn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from pipeline_common.recall.models import parse_transcript, parse_transcript_artifact
from tests.support.recall_sim import SSL_CONTEXT, RunningSim
from tests.support.waiting import wait_for

pytestmark = pytest.mark.integration

PROVIDER = {"provider": {"recallai_async": {"language_code": "auto"}}}


@pytest.fixture
async def http(recall_sim: RunningSim) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Token {recall_sim.api_key}"}
    async with httpx.AsyncClient(
        base_url=recall_sim.base_url, headers=headers, verify=SSL_CONTEXT, timeout=10
    ) as client:
        yield client


def create_path(recording_id: str) -> str:
    return f"/api/v1/recording/{recording_id}/create_transcript/"


@pytest.mark.parametrize(
    ("headers", "status", "detail"),
    [
        ({}, 401, "Authentication credentials were not provided."),
        ({"Authorization": "Token wrong"}, 401, "Invalid token."),
        ({"Authorization": "Bearer {key}"}, 401, "Invalid token."),
        ({"Authorization": "Token {key}"}, 404, "Not found."),
        ({"Authorization": "{key}"}, 404, "Not found."),  # Recall's docs also show the bare key
        ({"Authorization": "token   {key}"}, 404, "Not found."),
    ],
)
async def test_auth(recall_sim: RunningSim, headers: dict[str, str], status: int, detail: str) -> None:
    headers = {name: value.format(key=recall_sim.api_key) for name, value in headers.items()}
    async with httpx.AsyncClient(base_url=recall_sim.base_url, verify=SSL_CONTEXT) as client:
        for method, path in (
            ("GET", "/api/v1/transcript/x/"),
            ("GET", "/api/v1/recording/x/"),
            ("DELETE", "/api/v1/transcript/x/"),
            ("POST", create_path("x")),
        ):
            response = await client.request(method, path, headers=headers, json=PROVIDER)
            assert (response.status_code, response.json()) == (status, {"detail": detail})
        listing = await client.get("/api/v1/transcript/", headers=headers)
        assert listing.status_code == (200 if status == 404 else 401)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"provider": ["This field is required."]}),
        ({"provider": None}, {"provider": ["This field is required."]}),
        ([], {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
        ({"provider": {}}, {"provider": ["exactly one provider key is required, got 0"]}),
        (
            {"provider": {"recallai_async": {}, "rev_async": {}}},
            {"provider": ["exactly one provider key is required, got 2"]},
        ),
        ({"provider": {"openai_async": {}}}, None),
        ({"provider": {"recallai_async": []}}, {"provider": ["the options of recallai_async must be an object"]}),
        ({**PROVIDER, "diarization": "yes"}, {"diarization": ["Expected an object."]}),
        (
            {**PROVIDER, "diarization": {"use_separate_streams_when_available": "yes"}},
            {"diarization": ["use_separate_streams_when_available: Must be a valid boolean."]},
        ),
        (
            {**PROVIDER, "metadata": {"n": 1}},
            {"metadata": ["Expected an object of strings of at most 500 characters."]},
        ),
    ],
)
async def test_create_validates_the_body(
    recall_sim: RunningSim, http: httpx.AsyncClient, body: Any, errors: dict[str, list[str]] | None
) -> None:
    recording = await recall_sim.admin.create_recording()
    response = await http.post(create_path(recording["id"]), json=body)
    assert response.status_code == 400
    if errors is None:
        assert "unknown provider 'openai_async'" in response.json()["provider"][0]
    else:
        assert response.json() == errors
    assert await recall_sim.admin.transcripts() == []


async def test_create_refuses_bodies_that_are_not_json_or_too_big(
    recall_sim: RunningSim, http: httpx.AsyncClient
) -> None:
    recording = await recall_sim.admin.create_recording()
    bad = await http.post(create_path(recording["id"]), content=b"{nope", headers={"Content-Type": "application/json"})
    assert (bad.status_code, bad.json()) == (400, {"detail": "JSON parse error."})
    deep = await http.post(create_path(recording["id"]), content=b"[" * 100_000 + b"]" * 100_000)
    assert deep.status_code in {400, 413}
    big = await http.post(create_path(recording["id"]), content=b" " * (1024 * 1024 + 1))
    assert big.status_code == 413


async def test_a_created_transcript_processes_then_is_done(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    recording = await recall_sim.admin.create_recording()
    created = await http.post(create_path(recording["id"]), json={**PROVIDER, "metadata": {"k": "v", "n": ""}})
    assert created.status_code == 200
    artifact = parse_transcript_artifact(created.content)
    assert artifact.is_processing and artifact.download_url is None and artifact.metadata == {"k": "v", "n": ""}
    assert artifact.provider == PROVIDER["provider"]  # echoed as given
    assert artifact.expires_at and artifact.created_at and (artifact.expires_at - artifact.created_at).days == 7

    async def finished() -> Any:
        response = await http.get(f"/api/v1/transcript/{artifact.id}/")
        return response.json() if response.json()["status"]["code"] == "done" else None

    body = await wait_for(finished, timeout=5, interval=0.02)
    assert body["data"]["download_url"].startswith(recall_sim.base_url + "/files/transcripts/")
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as anonymous:
        data = await anonymous.get(body["data"]["download_url"])
    assert data.status_code == 200 and data.headers["content-type"] == "application/json"
    assert parse_transcript(data.content)


async def test_download_urls_behave_like_s3_presigned_urls(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.configure(download_url_ttl_seconds=60)
    recording = await recall_sim.admin.create_recording()
    transcript_id = (await http.post(create_path(recording["id"]), json=PROVIDER)).json()["id"]
    await recall_sim.admin.finish_transcript(transcript_id, "done")
    url = (await http.get(f"/api/v1/transcript/{transcript_id}/")).json()["data"]["download_url"]
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as anonymous:
        assert (await anonymous.get(url)).status_code == 200
        with_key = await http.get(url)  # an API key on a pre-signed URL: S3 refuses both at once
        assert with_key.status_code == 400 and b"Only one auth mechanism allowed" in with_key.content
        unsigned = await anonymous.get(url.split("?")[0])
        assert unsigned.status_code == 403 and b"AccessDenied" in unsigned.content
        other = await anonymous.get(url.replace(transcript_id, "00000000-0000-0000-0000-000000000000"))
        assert other.status_code == 403
        await recall_sim.admin.advance_clock(61)
        expired = await anonymous.get(url)
        assert expired.status_code == 403 and b"Request has expired" in expired.content
        assert expired.headers["content-type"].startswith("application/xml")
    outcomes = [call["outcome"] for call in await recall_sim.admin.calls(endpoint="download")]
    assert outcomes == ["ok", "authorization_sent", "AccessDenied", "SignatureDoesNotMatch", "ExpiredToken"]


async def test_failed_and_processing_transcripts_have_no_download_url(
    recall_sim: RunningSim, http: httpx.AsyncClient
) -> None:
    await recall_sim.admin.configure(transcript_delay_seconds=None)
    recording = await recall_sim.admin.create_recording()
    transcript_id = (await http.post(create_path(recording["id"]), json=PROVIDER)).json()["id"]
    assert (await http.get(f"/api/v1/transcript/{transcript_id}/")).json()["data"]["download_url"] is None
    finished = await recall_sim.admin.finish_transcript(transcript_id, "failed", "provider_connection_failed")
    assert finished == {"changed": True, "status": "failed", "sub_code": "provider_connection_failed"}
    body = (await http.get(f"/api/v1/transcript/{transcript_id}/")).json()
    assert body["status"]["code"] == "failed" and body["status"]["sub_code"] == "provider_connection_failed"
    assert body["data"] == {"download_url": None, "provider_data_download_url": None}
    assert (await recall_sim.admin.finish_transcript(transcript_id, "done"))["changed"] is False


async def test_idempotency_key_rules(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    recording = await recall_sim.admin.create_recording()
    path = create_path(recording["id"])
    first = await http.post(path, json=PROVIDER, headers={"Idempotency-Key": "a"})
    replay = await http.post(path, json={"provider": {"rev_async": {}}}, headers={"Idempotency-Key": "a"})
    assert replay.status_code == 200 and replay.json() == first.json()
    assert replay.headers["idempotent-replayed"] == "true"
    # A rejected request is replayed too (Recall processed it) ...
    rejected = await http.post(path, json={}, headers={"Idempotency-Key": "b"})
    again = await http.post(path, json=PROVIDER, headers={"Idempotency-Key": "b"})
    assert (rejected.status_code, again.status_code, again.json()) == (400, 400, rejected.json())
    # ... but not a 5xx: the retry does the work.
    await recall_sim.admin.set_faults({"endpoints": {"create_transcript": {"fail_next": 1, "status": 503}}})
    failed = await http.post(path, json=PROVIDER, headers={"Idempotency-Key": "c"})
    retried = await http.post(path, json=PROVIDER, headers={"Idempotency-Key": "c"})
    assert (failed.status_code, retried.status_code) == (503, 200)
    # Keys are remembered for an hour.
    await recall_sim.admin.advance_clock(3601)
    fresh = await http.post(path, json=PROVIDER, headers={"Idempotency-Key": "a"})
    assert fresh.status_code == 200 and fresh.json()["id"] != first.json()["id"]
    assert "idempotent-replayed" not in fresh.headers
    keys = [t["idempotency_key"] for t in await recall_sim.admin.transcripts(recording["id"])]
    assert keys == ["a", "c", "a"]


async def test_concurrent_duplicates_create_once(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    recording = await recall_sim.admin.create_recording()
    await recall_sim.admin.set_faults({"endpoints": {"create_transcript": {"latency_seconds": 0.3}}})
    responses = await asyncio.gather(
        *(http.post(create_path(recording["id"]), json=PROVIDER, headers={"Idempotency-Key": "same"}) for _ in range(5))
    )
    assert sorted(r.status_code for r in responses) == [200, 409, 409, 409, 409]
    assert len(await recall_sim.admin.transcripts(recording["id"])) == 1


async def test_rate_limits(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.configure(
        create_per_bot_per_window=1, retrieve_per_window=2, list_per_window=1, rate_window_seconds=10
    )
    recording = await recall_sim.admin.create_recording()
    assert (await http.post(create_path(recording["id"]), json=PROVIDER)).status_code == 200
    limited = await http.post(create_path(recording["id"]), json=PROVIDER)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "10"
    assert "throttled" in limited.json()["detail"]
    statuses = [(await http.get("/api/v1/transcript/x/")).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    assert [(await http.get("/api/v1/transcript/")).status_code for _ in range(2)] == [200, 429]
    await recall_sim.admin.advance_clock(4)
    assert (await http.get("/api/v1/transcript/")).headers["retry-after"] == "6"
    await recall_sim.admin.advance_clock(6)
    assert (await http.get("/api/v1/transcript/")).status_code == 200


async def test_list_pagination_and_cursor(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.configure(page_size=2, transcript_delay_seconds=None)
    recording = await recall_sim.admin.create_recording()
    for _ in range(3):
        await http.post(create_path(recording["id"]), json=PROVIDER)
    page = (await http.get("/api/v1/transcript/", params={"recording_id": recording["id"]})).json()
    assert len(page["results"]) == 2 and page["previous"] is None
    assert page["next"].startswith(recall_sim.base_url + "/api/v1/transcript/?recording_id=")
    last = (await http.get(page["next"])).json()
    assert len(last["results"]) == 1 and last["next"] is None
    bad = await http.get("/api/v1/transcript/", params={"cursor": "!!!"})
    assert (bad.status_code, bad.json()) == (404, {"detail": "Invalid cursor"})


async def test_deleted_transcripts_free_the_limit_and_vanish(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.configure(transcript_limit=2, transcript_delay_seconds=None)
    recording = await recall_sim.admin.create_recording()
    ids = [(await http.post(create_path(recording["id"]), json=PROVIDER)).json()["id"] for _ in range(2)]
    full = await http.post(create_path(recording["id"]), json=PROVIDER)
    assert full.status_code == 400 and "Maximum number of transcripts (2)" in full.json()["detail"]
    assert (await http.delete(f"/api/v1/transcript/{ids[0]}/")).status_code == 204
    assert (await http.get(f"/api/v1/transcript/{ids[0]}/")).status_code == 404
    assert (await http.post(create_path(recording["id"]), json=PROVIDER)).status_code == 200
    listed = (await http.get("/api/v1/transcript/", params={"recording_id": recording["id"]})).json()["results"]
    assert ids[0] not in [item["id"] for item in listed]


async def test_create_needs_a_done_recording(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    recording = await recall_sim.admin.create_recording(status="processing")
    refused = await http.post(create_path(recording["id"]), json=PROVIDER)
    assert refused.status_code == 400 and "not done" in refused.json()["detail"]
    await recall_sim.admin.set_recording_status(recording["id"], "done")
    assert (await http.post(create_path(recording["id"]), json=PROVIDER)).status_code == 200


async def test_recordings_without_a_bot(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    recording = await recall_sim.admin.create_recording(bot=False, id="sdk-upload-1")
    assert recording["bot"] is None
    body = (await http.post(create_path("sdk-upload-1"), json=PROVIDER)).json()
    assert body["recording"]["source"] == {}
    assert (await http.get("/api/v1/recording/sdk-upload-1/")).json()["bot"] is None


async def test_injected_latency_errors_and_drops(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.set_faults(
        {
            "endpoints": {
                "retrieve_recording": {"latency_seconds": 0.2, "fail_next": 1, "status": 502},
                "list_transcripts": {"drop_next": 1},
                "retrieve_transcript": {"error_rate": 1.0, "status": 504},
            }
        }
    )
    recording = await recall_sim.admin.create_recording()
    slow = await http.get(f"/api/v1/recording/{recording['id']}/")
    assert slow.status_code == 502 and slow.elapsed.total_seconds() >= 0.2
    assert (await http.get(f"/api/v1/recording/{recording['id']}/")).status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        await http.get("/api/v1/transcript/")
    assert (await http.get("/api/v1/transcript/")).status_code == 200
    assert {(await http.get("/api/v1/transcript/x/")).status_code for _ in range(5)} == {504}
    calls = await recall_sim.admin.calls()
    assert [c["outcome"] for c in calls if c["endpoint"] == "list_transcripts"] == ["dropped", "ok"]
    assert all(c["latency_ms"] >= 200 for c in calls if c["endpoint"] == "retrieve_recording")
    await recall_sim.admin.clear_faults()
    assert (await http.get("/api/v1/transcript/x/")).status_code == 404


async def test_error_rates_are_rates(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.set_faults({"endpoints": {"retrieve_transcript": {"error_rate": 0.5, "status": 503}}})
    statuses = [(await http.get("/api/v1/transcript/x/")).status_code for _ in range(60)]
    assert 10 <= statuses.count(503) <= 50 and set(statuses) == {404, 503}


async def test_provider_failures_by_provider_name(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    await recall_sim.admin.set_faults(
        {"provider_failures": {"deepgram_async": "provider_connection_failed", "rev_async": {"sub_code": "custom"}}}
    )
    recording = await recall_sim.admin.create_recording()
    ids = {}
    for name in ("deepgram_async", "rev_async", "assembly_ai_async"):
        response = await http.post(create_path(recording["id"]), json={"provider": {name: {}}})
        ids[name] = response.json()["id"]

    async def statuses() -> dict[str, tuple[str, str | None]] | None:
        found = {}
        for name, transcript_id in ids.items():
            status = (await http.get(f"/api/v1/transcript/{transcript_id}/")).json()["status"]
            found[name] = (status["code"], status["sub_code"])
        return None if any(code == "processing" for code, _ in found.values()) else found

    assert await wait_for(statuses, timeout=5, interval=0.02) == {
        "deepgram_async": ("failed", "provider_connection_failed"),
        "rev_async": ("failed", "custom"),
        "assembly_ai_async": ("done", None),
    }


async def test_failing_providers_per_recording(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    doomed = await recall_sim.admin.create_recording(
        transcript={"failing_providers": {"recallai_async": "provider_connection_failed"}}
    )
    healthy = await recall_sim.admin.create_recording()
    ids = {}
    for recording in (doomed, healthy):
        response = await http.post(create_path(recording["id"]), json={"provider": {"recallai_async": {}}})
        ids[recording["id"]] = response.json()["id"]

    async def statuses() -> dict[str, tuple[str, str | None]] | None:
        found = {}
        for recording_id, transcript_id in ids.items():
            status = (await http.get(f"/api/v1/transcript/{transcript_id}/")).json()["status"]
            found[recording_id] = (status["code"], status["sub_code"])
        return None if any(code == "processing" for code, _ in found.values()) else found

    assert await wait_for(statuses, timeout=5, interval=0.02) == {
        doomed["id"]: ("failed", "provider_connection_failed"),
        healthy["id"]: ("done", None),
    }


async def test_processing_seconds_per_recording(recall_sim: RunningSim, http: httpx.AsyncClient) -> None:
    """A recording's own processing time overrides the configured one: its transcript stays processing."""
    await recall_sim.admin.configure(transcript_delay_seconds=0.05)
    slow = await recall_sim.admin.create_recording(transcript={"processing_seconds": 3600})
    quick = await recall_sim.admin.create_recording()
    ids = {}
    for recording in (slow, quick):
        response = await http.post(create_path(recording["id"]), json={"provider": {"recallai_async": {}}})
        ids[recording["id"]] = response.json()["id"]

    async def quick_done() -> bool:
        return (await http.get(f"/api/v1/transcript/{ids[quick['id']]}/")).json()["status"]["code"] == "done"

    assert await wait_for(quick_done, timeout=5, interval=0.02)
    assert (await http.get(f"/api/v1/transcript/{ids[slow['id']]}/")).json()["status"]["code"] == "processing"


async def test_admin_validation_and_state(recall_sim: RunningSim) -> None:
    async with httpx.AsyncClient(base_url=recall_sim.base_url, verify=SSL_CONTEXT) as client:
        assert (await client.put("/admin/faults", json={"endpoints": {"nope": {}}})).status_code == 422
        assert (
            await client.put("/admin/faults", json={"endpoints": {"download": {"error_rate": 2}}})
        ).status_code == 422
        assert (await client.patch("/admin/config", json={"page_size": 0})).status_code == 422
        assert (await client.patch("/admin/config", json={"webhook_secrets": ["nope"]})).status_code == 422
        config = (await client.get("/admin/config")).json()
        assert config["webhook_secrets"] == 1 and recall_sim.webhook_secrets[0] not in str(config)
        assert (await client.post("/admin/recordings", json={"id": "../x"})).status_code == 422
        await recall_sim.admin.create_recording(id="r-1")
        assert (await client.post("/admin/recordings", json={"id": "r-1"})).status_code == 409
        assert (await client.get("/healthz")).json() == {"status": "ok"}
    await recall_sim.admin.reset()
    assert await recall_sim.admin.deliveries() == [] and await recall_sim.admin.calls() == []
