from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from pipeline_common.recall.client import RecallClient, parse_retry_after, safe_url
from pipeline_common.recall.errors import (
    ErrorKind,
    RecallApiError,
    RecallBadRequest,
    RecallForbidden,
    RecallIdempotencyConflict,
    RecallNotFound,
    RecallPaymentRequired,
    RecallRateLimited,
    RecallRequestTimeout,
    RecallServerError,
    RecallTranscriptLimitReached,
    RecallUnauthorized,
    error_for_status,
    mentions_transcript_limit,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("status", "detail", "cls", "kind"),
    [
        (429, "Request was throttled.", RecallRateLimited, ErrorKind.RETRYABLE),
        (408, None, RecallRequestTimeout, ErrorKind.RETRYABLE),
        (409, None, RecallIdempotencyConflict, ErrorKind.RETRYABLE),
        (500, None, RecallServerError, ErrorKind.RETRYABLE),
        (502, None, RecallServerError, ErrorKind.RETRYABLE),
        (503, None, RecallServerError, ErrorKind.RETRYABLE),
        (504, None, RecallServerError, ErrorKind.RETRYABLE),
        (507, None, RecallServerError, ErrorKind.RETRYABLE),
        (401, "Invalid token.", RecallUnauthorized, ErrorKind.OPERATOR),
        (402, None, RecallPaymentRequired, ErrorKind.OPERATOR),
        (403, None, RecallForbidden, ErrorKind.FIREWALL),
        (404, "Not found.", RecallNotFound, ErrorKind.TERMINAL),
        (400, "provider: unknown provider", RecallBadRequest, ErrorKind.TERMINAL),
        (422, None, RecallBadRequest, ErrorKind.TERMINAL),
        (
            400,
            "Maximum number of transcripts (10) reached for this recording.",
            RecallTranscriptLimitReached,
            ErrorKind.TERMINAL,
        ),
        # Undocumented: any 4xx but 429 that mentions the limit is terminal, whatever its status.
        (403, "Transcript limit exceeded", RecallTranscriptLimitReached, ErrorKind.TERMINAL),
        (409, "Too many transcripts for this recording", RecallTranscriptLimitReached, ErrorKind.TERMINAL),
        (409, "Request in progress", RecallIdempotencyConflict, ErrorKind.RETRYABLE),
        (429, "transcript rate limit", RecallRateLimited, ErrorKind.RETRYABLE),  # a rate limit is not the 10-limit
        (
            400,
            "You have reached the limit of 10 transcripts per recording",
            RecallTranscriptLimitReached,
            ErrorKind.TERMINAL,
        ),
    ],
)
def test_status_classification(status: int, detail: str | None, cls: type[RecallApiError], kind: ErrorKind) -> None:
    error = error_for_status(status, method="POST", path="/api/v1/x/", detail=detail, retry_after=None)
    assert type(error) is cls
    assert error.kind is kind
    assert error.status == status
    assert error.retryable is (kind is ErrorKind.RETRYABLE)


def test_message_and_repr() -> None:
    error = error_for_status(
        429, method="POST", path="/api/v1/recording/r/create_transcript/", detail="slow down", retry_after=12
    )
    assert (
        str(error)
        == "POST /api/v1/recording/r/create_transcript/ -> HTTP 429: rate limited (slow down); retry after 12s"
    )
    assert repr(error).startswith("RecallRateLimited(kind='retryable', status=429, retry_after=12")
    assert error.retry_after == 12


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Maximum number of transcripts reached", True),
        ("transcript limit", True),
        ("Cannot create more than 10 transcripts: limit exceeded", True),
        ("Recording is not done", False),
        ("limit", False),
        ("transcript failed", False),
    ],
)
def test_limit_detection(text: str, expected: bool) -> None:
    assert mentions_transcript_limit(text) is expected


def test_retry_after_parsing() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("99999999") == 24 * 3600.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now=now.timestamp()) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(seconds=30), usegmt=True), now=now.timestamp()) == 0.0
    for garbage in (None, "", "soon", "nan", "1e", "Mon, 99 Foo"):
        assert parse_retry_after(garbage) is None


def test_safe_url_drops_credentials_and_queries() -> None:
    url = "https://user:pw@bucket.s3.amazonaws.com:8443/t/abc.json?X-Amz-Signature=SECRET#frag"
    assert safe_url(url) == "https://bucket.s3.amazonaws.com:8443/t/abc.json"
    assert safe_url("http://[::1") == "<unparseable url>"


def test_the_client_never_shows_its_key() -> None:
    client = RecallClient(api_key="super-secret-key", base_url="http://127.0.0.1:9/")
    assert "super-secret-key" not in repr(client)
    assert "super-secret-key" not in str(vars(client))
    assert client.base_url == "http://127.0.0.1:9"


def test_client_configuration_errors() -> None:
    with pytest.raises(ValueError, match="API key is required"):
        RecallClient(api_key="", base_url="https://us-west-2.recall.ai")
    with pytest.raises(ValueError, match="API key is required"):
        RecallClient(api_key="abc\r\nX-Injected: 1", base_url="https://us-west-2.recall.ai")
    with pytest.raises(ValueError, match="http"):
        RecallClient(api_key="k", base_url="ftp://recall.ai")
    assert RecallClient(api_key="k", region="eu-central-1").base_url == "https://eu-central-1.recall.ai"
    assert RecallClient(api_key="k").base_url == "https://us-west-2.recall.ai"
    with pytest.raises(ValueError, match="mars-1"):
        RecallClient(api_key="k", region="mars-1")
