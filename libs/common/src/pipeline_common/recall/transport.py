"""What the Recall client does on the wire, outside the class: URLs safe to log, ``Retry-After``, the download host
allowlist, capped reads, and every failure as a typed :class:`~pipeline_common.recall.errors.RecallApiError`."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from pipeline_common.recall.errors import (
    RecallApiError,
    RecallBadRequest,
    RecallConnectionError,
    RecallDownloadExpired,
    RecallInvalidResponse,
    RecallNotFound,
    RecallOperatorError,
    RecallRateLimited,
    RecallRequestTimeout,
    RecallResponseLost,
    RecallServerError,
    error_for_status,
)

DETAIL_CHARS: Final = 300
ERROR_BODY_BYTES: Final = 4096
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


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def host_allowed(host: str, allowed: Collection[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in allowed:
        pattern = entry.lower().rstrip(".")
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: httpx.Headers
    body: bytes
    method: str
    path: str


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of a streamed body (a hostile or broken server cannot make us hold more)."""
    body = bytearray()
    async for piece in response.aiter_bytes():
        body += piece
        if len(body) >= limit:
            break
    return bytes(body[:limit])


def scrub(text: str, secret: str) -> str:
    """``text`` on one line, at most a few hundred characters, with ``secret`` masked."""
    if secret:
        text = text.replace(secret, "**********")
    return " ".join(text.split())[:DETAIL_CHARS]


def error_detail(content: bytes, secret: str) -> str | None:
    """What an error body says (Recall's ``detail``, or its first fields), scrubbed; None when it says nothing."""
    body = content[:ERROR_BODY_BYTES]
    if not body:
        return None
    text = body.decode("utf-8", errors="replace")
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        parsed = None
    if isinstance(parsed, dict):
        if isinstance(parsed.get("detail"), str):
            text = parsed["detail"]
        else:
            text = "; ".join(
                f"{field}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                for field, value in list(parsed.items())[:5]
            )
    elif isinstance(parsed, list):
        text = " ".join(map(str, parsed[:5]))
    return scrub(text, secret) or None


def status_error(reply: Reply, secret: str) -> RecallApiError:
    """The typed error of an API call answered with a non-2xx status."""
    status, method, path = reply.status, reply.method, reply.path
    retry_after = parse_retry_after(reply.headers.get("Retry-After"))
    if 300 <= status < 400:
        return RecallOperatorError(
            "unexpected redirect: check RECALL_API_BASE_URL (scheme, host, trailing slash)",
            status=status,
            method=method,
            path=path,
        )
    return error_for_status(
        status, method=method, path=path, detail=error_detail(reply.body, secret), retry_after=retry_after
    )


def download_error(response: httpx.Response, body: bytes, path: str, secret: str) -> RecallApiError:
    """The typed error of a download answered with a non-2xx status (a refusal usually means the URL expired)."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    common: dict[str, Any] = {"status": status, "method": "GET", "path": path, "detail": error_detail(body, secret)}
    if status in {401, 403}:
        return RecallDownloadExpired("download URL refused (expired?): retrieve the transcript again", **common)
    if status == 404:
        return RecallNotFound("download URL not found", **common)
    if status == 429:
        return RecallRateLimited("download rate limited", retry_after=retry_after, **common)
    if status >= 500 or status == 408:
        return RecallServerError("download failed on the server", retry_after=retry_after, **common)
    return RecallBadRequest("download refused", **common)


def transport_error(error: httpx.HTTPError, method: str, path: str) -> RecallApiError:
    """The typed error of a call that got no (complete) answer."""

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
