"""Cursor pagination of Recall's list endpoints: the ONE walk that both List Transcripts callers use.

:meth:`RecallClient.iter_transcripts <pipeline_common.recall.client.RecallClient.iter_transcripts>` (the
transcriber's worker core, the transcript-limit clean-up) and :mod:`pipeline_common.recall.listing` (the reconciler's
List Recordings / List Transcripts walks) both page through :func:`walk_pages`. It follows ``next`` only to the API's
own origin, stops on a loop and after :data:`MAX_PAGES`. A :class:`ListPacer` (a long walk: a backfill over months)
spaces the calls itself and waits out a bounded number of 429s; without one, the client's own per-operation pacer
applies.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Final, Protocol, TypeVar
from urllib.parse import urlsplit

from pipeline_common.recall.errors import RecallInvalidResponse, RecallRateLimited
from pipeline_common.recall.pacing import Operation

if TYPE_CHECKING:
    from pipeline_common.recall.client import RecallClient

__all__ = ["MAX_PAGES", "RECALL_LIST_PER_MINUTE", "ListPacer", "origin", "walk_pages"]

MAX_PAGES: Final = 1000
RECALL_LIST_PER_MINUTE: Final = 60


class _Page(Protocol):
    @property
    def next(self) -> str | None: ...


P = TypeVar("P", bound=_Page)


def origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, lower-cased host and port (the scheme's default when none is given)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


class ListPacer:
    """At most ``per_minute`` list calls a minute (evenly spaced), and up to ``max_rate_limited`` waits on 429."""

    def __init__(
        self,
        per_minute: float = RECALL_LIST_PER_MINUTE,
        *,
        max_rate_limited: int = 5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if per_minute <= 0:
            raise ValueError("per_minute must be positive")
        self.interval = 60.0 / per_minute
        self.max_rate_limited = max_rate_limited
        self._clock = clock
        self._sleep = sleep
        self._next_at: float | None = None
        self.calls = 0
        self.waited_seconds = 0.0

    async def wait(self) -> None:
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            self.waited_seconds += self._next_at - now
            await self._sleep(self._next_at - now)
            now = self._next_at
        self._next_at = now + self.interval
        self.calls += 1

    async def rate_limited(self, retry_after: float | None, attempt: int) -> None:
        """Wait out a 429 (``Retry-After``, else one interval doubled per attempt); re-raises past the limit."""
        delay = retry_after if retry_after is not None else self.interval * 2**attempt
        self.waited_seconds += delay
        await self._sleep(delay)
        self._next_at = self._clock() + self.interval


async def _get_page(
    client: RecallClient,
    url: str,
    params: Mapping[str, str] | None,
    parse: Callable[[bytes], P],
    pacer: ListPacer | None,
) -> P:
    if pacer is None:
        return client._parse(await client._request("GET", url, params=params, pace=(Operation.LIST, None)), parse)
    attempt = 0
    while True:
        await pacer.wait()
        try:
            return client._parse(await client._request("GET", url, params=params), parse)
        except RecallRateLimited as error:
            if attempt >= pacer.max_rate_limited:
                raise
            await pacer.rate_limited(error.retry_after, attempt)
            attempt += 1


async def walk_pages(
    client: RecallClient,
    path: str,
    params: Mapping[str, str],
    parse: Callable[[bytes], P],
    *,
    pacer: ListPacer | None = None,
) -> AsyncIterator[P]:
    """Every page of ``GET path?params``, first to last."""
    url: str | None = path
    request_params: dict[str, str] | None = dict(params)
    seen: set[str] = set()
    pages = 0
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise RecallInvalidResponse(f"more than {MAX_PAGES} pages", method="GET", path=path)
        page = await _get_page(client, url, request_params, parse, pacer)
        yield page
        url, request_params = page.next, None
        if url is not None:
            if origin(url) != origin(client.base_url):
                raise RecallInvalidResponse("pagination 'next' points outside the API", method="GET", path=path)
            if url in seen:
                raise RecallInvalidResponse("pagination loops", method="GET", path=path)
            seen.add(url)
