"""Recall's list endpoints (List Recordings, List Transcripts) with cursor pagination, paced under the list limit.

Recall allows about 60 list calls a minute per workspace. A :class:`ListPacer` spaces the calls (one every
``60 / per_minute`` seconds) and waits out a 429's ``Retry-After`` a bounded number of times, so a long walk (a
backfill over months) slows down instead of failing. Pagination follows ``next`` only to the API's own origin and
stops on a loop. Kept apart from :class:`~pipeline_common.recall.client.RecallClient` so the client stays the
single-call primitive and the walking policy lives in one place.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final, TypeVar
from urllib.parse import urlsplit

from pydantic import StrictStr, ValidationError

from pipeline_common.recall._base import RecallModel, check_size, invalid
from pipeline_common.recall.client import MAX_PAGES, RecallClient
from pipeline_common.recall.errors import RecallInvalidArgument, RecallInvalidResponse, RecallRateLimited
from pipeline_common.recall.models import API_RESPONSE_MAX_BYTES, RecordingArtifact, TranscriptArtifact

__all__ = [
    "ListPacer",
    "RecordingFilter",
    "RecordingPage",
    "iter_recordings",
    "iter_transcripts",
    "parse_recording_page",
]

T = TypeVar("T")

RECALL_LIST_PER_MINUTE: Final = 60
RECORDING_STATUSES: Final = frozenset({"processing", "paused", "done", "failed"})
METADATA_VALUE_MAX: Final = 500


class RecordingPage(RecallModel):
    """One page of List Recordings (cursor pagination: follow ``next`` until it is null)."""

    next: StrictStr | None = None
    previous: StrictStr | None = None
    results: list[RecordingArtifact]


class _TranscriptPage(RecallModel):
    next: StrictStr | None = None
    previous: StrictStr | None = None
    results: list[TranscriptArtifact]


def parse_recording_page(data: bytes | str, *, max_bytes: int | None = API_RESPONSE_MAX_BYTES) -> RecordingPage:
    raw = check_size(data, max_bytes, "recording list")
    try:
        return RecordingPage.model_validate_json(raw)
    except ValidationError as error:
        raise invalid(error, "recording list") from None


def _parse_transcript_page(data: bytes | str) -> _TranscriptPage:
    raw = check_size(data, API_RESPONSE_MAX_BYTES, "transcript list")
    try:
        return _TranscriptPage.model_validate_json(raw)
    except ValidationError as error:
        raise invalid(error, "transcript list") from None


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise RecallInvalidArgument("created_at filters need timezone-aware datetimes")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class RecordingFilter:
    """List Recordings' filters: ``status_code``, ``created_at_after`` / ``created_at_before`` and
    ``metadata__KEY=VALUE`` pairs (all must match; Recall's metadata is string to string)."""

    def __init__(
        self,
        *,
        status_code: str | None = None,
        created_at_after: datetime | None = None,
        created_at_before: datetime | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        if status_code is not None and status_code not in RECORDING_STATUSES:
            raise RecallInvalidArgument(f"status_code must be one of {', '.join(sorted(RECORDING_STATUSES))}")
        for key, value in (metadata or {}).items():
            if not key or not isinstance(value, str) or len(value) > METADATA_VALUE_MAX:
                raise RecallInvalidArgument("metadata filters are non-empty keys with string values (<= 500 chars)")
        self.status_code = status_code
        self.created_at_after = created_at_after
        self.created_at_before = created_at_before
        self.metadata = dict(metadata or {})

    def params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self.status_code is not None:
            params["status_code"] = self.status_code
        if self.created_at_after is not None:
            params["created_at_after"] = _iso(self.created_at_after)
        if self.created_at_before is not None:
            params["created_at_before"] = _iso(self.created_at_before)
        for key, value in sorted(self.metadata.items()):
            params[f"metadata__{key}"] = value
        return params


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


async def _walk(
    client: RecallClient,
    path: str,
    params: Mapping[str, str],
    parse: Callable[[bytes], RecordingPage | _TranscriptPage],
    pacer: ListPacer | None,
) -> AsyncIterator[RecordingPage | _TranscriptPage]:
    url: str | None = path
    request_params: dict[str, str] | None = dict(params)
    seen: set[str] = set()
    pages = 0
    base = urlsplit(client.base_url)
    while url is not None:
        pages += 1
        if pages > MAX_PAGES:
            raise RecallInvalidResponse(f"more than {MAX_PAGES} pages", method="GET", path=path)
        attempt = 0
        while True:
            if pacer is not None:
                await pacer.wait()
            try:
                reply = await client._request("GET", url, params=request_params)
                break
            except RecallRateLimited as error:
                if pacer is None or attempt >= pacer.max_rate_limited:
                    raise
                await pacer.rate_limited(error.retry_after, attempt)
                attempt += 1
        page = client._parse(reply, parse)
        yield page
        url, request_params = page.next, None
        if url is not None:
            target = urlsplit(url)
            if (target.scheme, target.netloc) != (base.scheme, base.netloc):
                raise RecallInvalidResponse("pagination 'next' points outside the API", method="GET", path=path)
            if url in seen:
                raise RecallInvalidResponse("pagination loops", method="GET", path=path)
            seen.add(url)


async def iter_recordings(
    client: RecallClient, recording_filter: RecordingFilter | None = None, *, pacer: ListPacer | None = None
) -> AsyncIterator[RecordingArtifact]:
    """List Recordings (``GET /api/v1/recording/``) matching the filter, every page."""
    params = (recording_filter or RecordingFilter()).params()
    async for page in _walk(client, "/api/v1/recording/", params, parse_recording_page, pacer):
        for item in page.results:
            assert isinstance(item, RecordingArtifact)
            yield item


async def iter_transcripts(
    client: RecallClient, *, pacer: ListPacer | None = None, **filters: str
) -> AsyncIterator[TranscriptArtifact]:
    """List Transcripts (``GET /api/v1/transcript/``; ``recording_id``, ``status_code``, ``created_at_*``), paced."""
    async for page in _walk(client, "/api/v1/transcript/", filters, _parse_transcript_page, pacer):
        for item in page.results:
            assert isinstance(item, TranscriptArtifact)
            yield item
