"""HTTP helpers of the Recall client: URLs safe to log, ``Retry-After``, capped reads, transport failures, and the
short, secret-free detail of an error body."""

from __future__ import annotations

import json
import time
from email.utils import parsedate_to_datetime
from typing import Final
from urllib.parse import urlsplit

import httpx

from pipeline_common.recall.errors import (
    RecallApiError,
    RecallConnectionError,
    RecallInvalidResponse,
    RecallRequestTimeout,
    RecallResponseLost,
)

MAX_RETRY_AFTER_SECONDS: Final = 24 * 3600.0


def safe_url(url: str) -> str:
    """``scheme://host/path`` with the query and fragment (pre-signed credentials) and any userinfo removed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "<unparseable url>"
    return f"{parts.scheme}://{host}{port}{parts.path}"[:300]


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), clamped to [0, 24 h]; None if absent or garbled."""
    if value is None:
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
        if seconds != seconds:  # NaN
            return None
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:  # pragma: no cover - older Pythons
            return None
        seconds = moment.timestamp() - (now if now is not None else time.time())
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed body (a hostile or broken server cannot make us hold more)."""
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def transport_error(error: httpx.HTTPError, method: str, path: str) -> RecallApiError:
    name = type(error).__name__
    if isinstance(error, httpx.TimeoutException):
        return RecallRequestTimeout(f"timed out ({name})", method=method, path=path)
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return RecallResponseLost(
            f"connection closed before the response arrived ({name}); the request may have been processed",
            method=method,
            path=path,
        )
    if isinstance(error, httpx.DecodingError):
        return RecallInvalidResponse(f"response body could not be decoded ({name})", method=method, path=path)
    if isinstance(error, httpx.TransportError):
        return RecallConnectionError(f"could not reach Recall ({name})", method=method, path=path)
    return RecallConnectionError(f"HTTP error ({name})", method=method, path=path)


def scrub(text: str, secret: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters, with ``secret`` masked (Recall may echo a bad key)."""
    if secret:
        text = text.replace(secret, "**********")
    return " ".join(text.split())[:limit]


def error_detail(body: bytes) -> str:
    """What an error body says: DRF's ``detail``, the first few ``field: messages``, or the text itself."""
    if not body:
        return ""
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("detail"), str):
            return str(parsed["detail"])
        return "; ".join(
            f"{field}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
            for field, value in list(parsed.items())[:5]
        )
    if isinstance(parsed, list):
        return " ".join(map(str, parsed[:5]))
    return text
