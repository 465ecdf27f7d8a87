"""Arbitrary bytes and headers at the live endpoint: never a 5xx (503 is Kafka's alone), never a write."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ingest.conftest import IngestUnderTest, recording_done, signed

pytestmark = [pytest.mark.integration, pytest.mark.slow]

header_names = st.sampled_from(
    [
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "svix-id",
        "svix-signature",
        "content-type",
        "content-length",
        "traceparent",
        "x-anything",
    ]
)
header_values = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=200).map(str.strip),
    st.sampled_from(["application/json", "v1,AAAA", "0", "-1", "99999999999", "999999999999", "v1," + "A" * 5000]),
    # Header values as raw bytes: latin-1 characters such as b"\xb2" ("²", for which str.isdigit() is true).
    st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_categories=("Cc",)), max_size=20)
    .map(str.strip)
    .map(lambda text: text.encode("latin-1")),
    st.sampled_from([b"\xb2", b"\xb9\xb2\xb3", b"1\xb2", b"v1,\xb2"]),
)


def is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def test_arbitrary_requests_are_refused_cleanly_and_write_nothing(ingest: IngestUnderTest) -> None:
    before = asyncio.run(ingest.offsets())
    statuses: dict[int, int] = {}

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        body=st.one_of(st.binary(max_size=2048), st.just(recording_done("r-fuzz"))),
        headers=st.dictionaries(header_names, header_values, max_size=8),
        resign=st.booleans(),
    )
    def fire(body: bytes, headers: dict[str, str | bytes], resign: bool) -> None:
        if resign and "content-length" not in headers and is_utf8(body):
            # A valid signature over junk: verification passes, parsing must refuse it (or it is a real event).
            headers = {**headers, **signed(body)}
        headers.pop("content-length", None)  # a lying Content-Length is the HTTP client's business, not ours
        response = ingest.client.post("/webhooks/recall", content=body, headers=headers)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        assert response.status_code < 500 or response.status_code == 503
        if response.status_code == 200:
            assert "webhook-id" in headers and resign, "an unsigned request was accepted"

    fire()
    accepted = statuses.get(200, 0)
    after = asyncio.run(ingest.offsets())
    written = sum(after[t][p] - before[t].get(p, 0) for t in after for p in after[t])
    assert written == accepted, f"{written} records written for {accepted} accepted requests ({statuses})"
    assert set(statuses) <= {200, 400, 401, 413, 415}, statuses
