"""Recall's List Recordings with cursor pagination, paced under the list limit (List Transcripts is the client's own
:meth:`~pipeline_common.recall.client.RecallClient.iter_transcripts`, which takes the same pacer).

Recall allows about 60 list calls a minute per workspace. A :class:`~pipeline_common.recall.paging.ListPacer` spaces
the calls (one every ``60 / per_minute`` seconds) and waits out a 429's ``Retry-After`` a bounded number of times, so
a long walk (a backfill over months) slows down instead of failing. The pages are walked by
:func:`pipeline_common.recall.paging.walk_pages`, the same walk the client's List Transcripts uses.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Final

from pydantic import StrictStr

from pipeline_common.recall._base import RecallModel, parse_model
from pipeline_common.recall.client import RecallClient
from pipeline_common.recall.errors import RecallInvalidArgument
from pipeline_common.recall.models import API_RESPONSE_MAX_BYTES, RecordingArtifact
from pipeline_common.recall.paging import ListPacer, walk_pages

RECORDING_STATUSES: Final = frozenset({"processing", "paused", "done", "failed"})
METADATA_VALUE_MAX: Final = 500


class RecordingPage(RecallModel):
    """One page of List Recordings (cursor pagination: follow ``next`` until it is null)."""

    next: StrictStr | None = None
    previous: StrictStr | None = None
    results: list[RecordingArtifact]


def parse_recording_page(data: bytes | str, *, max_bytes: int | None = API_RESPONSE_MAX_BYTES) -> RecordingPage:
    return parse_model(RecordingPage, data, max_bytes, "recording list")


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


async def iter_recordings(
    client: RecallClient, recording_filter: RecordingFilter | None = None, *, pacer: ListPacer | None = None
) -> AsyncIterator[RecordingArtifact]:
    """List Recordings (``GET /api/v1/recording/``) matching the filter, every page."""
    params = (recording_filter or RecordingFilter()).params()
    async for page in walk_pages(client, "/api/v1/recording/", params, parse_recording_page, pacer=pacer):
        for item in page.results:
            yield item
