"""Pre-signed download URLs: which hosts we fetch from, redirects checked hop by hop, and what a refusal means.

Recall's download URLs live on storage hosts (S3) or on the regional API host (``/api/v1/download/...?token=``),
which may redirect to storage. Every hop must be http(s) and on an allowed host (no SSRF through a redirect), and
the download client never carries an ``Authorization`` header (the URL is the credential).
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from contextlib import AbstractAsyncContextManager
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import httpx

from pipeline_common.recall.errors import (
    RecallApiError,
    RecallBadRequest,
    RecallDownloadExpired,
    RecallDownloadNotAllowed,
    RecallNotFound,
    RecallRateLimited,
    RecallServerError,
)

MAX_REDIRECTS: Final = 10
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})


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


def check_download_url(url: str, allowed: Collection[str] | None) -> None:
    """Raise :class:`RecallDownloadNotAllowed` unless ``url`` is http(s) on an allowed host."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError:
        raise RecallDownloadNotAllowed("download URL is not a valid URL") from None
    if parts.scheme not in {"http", "https"} or not host:
        raise RecallDownloadNotAllowed("download URL must be http(s) with a host")
    if allowed is not None and not host_allowed(host, allowed):
        raise RecallDownloadNotAllowed(f"download host {host[:100]!r} is not in the allowed list")


Opened = tuple[AbstractAsyncContextManager[httpx.Response], httpx.Response]


async def open_following_redirects(
    client: httpx.AsyncClient, url: str, allowed: Collection[str] | None, deadline: float
) -> Opened:
    """Open a streamed GET of ``url``, following redirects ourselves so every hop's host is checked first.
    The caller closes the returned stream context."""
    current = url
    for _ in range(MAX_REDIRECTS + 1):
        check_download_url(current, allowed)
        async with asyncio.timeout_at(deadline):
            stream = client.stream("GET", current)
            response = await stream.__aenter__()
        location = response.headers.get("Location")
        if response.status_code not in _REDIRECTS or not location:
            return stream, response
        await stream.__aexit__(None, None, None)
        try:
            current = urljoin(current, location.strip())
        except ValueError:
            raise RecallDownloadNotAllowed("download redirect Location is not a valid URL") from None
    raise RecallDownloadNotAllowed(f"download URL redirected more than {MAX_REDIRECTS} times")


def download_error(status: int, retry_after: float | None, detail: str | None, path: str) -> RecallApiError:
    """The typed error for a download URL's error status (its own meanings: 403 is an expired signature)."""
    common: dict[str, Any] = {"status": status, "method": "GET", "path": path, "detail": detail}
    if status in {401, 403}:
        return RecallDownloadExpired("download URL refused (expired?): retrieve the transcript again", **common)
    if status == 404:
        return RecallNotFound("download URL not found", **common)
    if status == 429:
        return RecallRateLimited("download rate limited", retry_after=retry_after, **common)
    if status >= 500 or status == 408:
        return RecallServerError("download failed on the server", retry_after=retry_after, **common)
    return RecallBadRequest("download refused", **common)
