"""One transcript, from Recall to the store: retrieve (fresh URL), download (streamed, capped, allowlisted), validate,
render and store its objects. Returns what it stored and the analysis; :mod:`fetcher.publish` takes it from there
(the event, the manifest, the announcement). Kafka is not touched here.

Nothing reaches the store before the transcript has been downloaded completely and validated: the download goes to
a spool file, and a failure at any point before the manifest leaves at most complete objects without a manifest,
which readers ignore and the next attempt overwrites with the same bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from fetcher.metrics import FetcherMetrics
from fetcher.transcript import RENDERERS, Analysis, analyse, render_one
from pipeline_common.contracts import StoredObject
from pipeline_common.logging import get_logger
from pipeline_common.recall.client import safe_url
from pipeline_common.recall.errors import (
    ErrorKind,
    InvalidRecallPayload,
    RecallApiError,
    RecallDownloadExpired,
    RecallDownloadNotAllowed,
    RecallDownloadTooLarge,
    RecallNotFound,
)
from pipeline_common.recall.models import TranscriptArtifact
from pipeline_common.store import RENDITIONS, Manifest, StoreError, TranscriptKeys, TranscriptStore, read_manifest

_log = get_logger("fetcher.fetch")
RAW_CONTENT_TYPE: Final = "application/json"


class Gone(Exception):
    """The transcript no longer exists at Recall (404, deleted, failed): nothing to store or announce."""


class Rejected(Exception):
    """No retry can fix this one (invalid, over the cap, disallowed host, ...): it goes to the DLQ."""


class RetryLater(Exception):
    """A retryable failure (Recall 429/5xx/network, an expired URL again and again, the store unavailable)."""

    def __init__(
        self,
        reason: str,
        *,
        kind: ErrorKind = ErrorKind.RETRYABLE,
        retry_after: float | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.kind = kind
        self.retry_after = retry_after
        self.status = status  # Recall's HTTP status, when Recall answered (names an operator problem's kind)


@dataclass(frozen=True)
class Job:
    recording_id: str
    transcript_id: str
    bot_id: str | None
    completed_at: datetime | None
    recording_metadata: dict[str, object]
    transcript_metadata: dict[str, object]


@dataclass(frozen=True)
class Fetched:
    """Downloaded, validated and stored object by object; not announced yet (no manifest: readers ignore it)."""

    keys: TranscriptKeys
    artifact: TranscriptArtifact
    objects: dict[str, StoredObject]
    analysis: Analysis


@dataclass(frozen=True)
class AlreadyStored:
    """Found complete in the store (manifest and its event) from an earlier attempt: only the announcement is left."""

    manifest: Manifest


class RecallDownloads(Protocol):
    """What the fetcher needs of :class:`~pipeline_common.recall.client.RecallClient`."""

    async def retrieve_transcript(self, transcript_id: str) -> TranscriptArtifact: ...

    def stream_download(self, url: str, max_bytes: int) -> AsyncIterator[bytes]: ...


def _classify(error: RecallApiError) -> Exception:
    if isinstance(error, RecallNotFound):
        return Gone(str(error))
    if error.kind is ErrorKind.TERMINAL:
        return Rejected(str(error))
    return RetryLater(str(error), kind=error.kind, retry_after=error.retry_after, status=error.status)


@dataclass(kw_only=True, eq=False)
class TranscriptFetcher:
    recall: RecallDownloads
    store: TranscriptStore
    metrics: FetcherMetrics
    max_bytes: int
    expired_url_retries: int
    store_provider_data: bool

    async def fetch(self, job: Job) -> Fetched | AlreadyStored:
        try:
            keys = TranscriptKeys(job.recording_id, job.transcript_id)
        except ValueError as error:
            raise Rejected(str(error)) from None
        try:
            existing = await read_manifest(self.store, keys)
        except StoreError as error:
            raise RetryLater(f"store: {error}") from None
        if existing is not None and existing.event is not None and existing.announcement is not None:
            _log.info("transcript already stored", transcript_id=job.transcript_id, manifest=keys.manifest)
            return AlreadyStored(existing)
        artifact, spool, sha256 = await self._download_fresh(job)
        try:
            analysis = await self._analyse(spool)
            objects = await self._store(job, keys, artifact, spool, sha256, analysis)
        finally:
            await asyncio.to_thread(spool.unlink, missing_ok=True)
        return Fetched(keys, artifact, objects, analysis)

    # --- Recall ---------------------------------------------------------------------------------------------------

    async def _retrieve(self, job: Job) -> TranscriptArtifact:
        started = time.perf_counter()
        try:
            artifact = await self.recall.retrieve_transcript(job.transcript_id)
        except RecallApiError as error:
            self.metrics.recall_calls.labels(operation="retrieve_transcript", outcome=error.kind.value).inc()
            raise _classify(error) from None
        finally:
            self.metrics.recall_latency.labels(operation="retrieve_transcript").observe(time.perf_counter() - started)
        self.metrics.recall_calls.labels(operation="retrieve_transcript", outcome="ok").inc()
        if artifact.recording_id is not None and artifact.recording_id != job.recording_id:
            raise Rejected(
                f"Recall says transcript {job.transcript_id} belongs to recording {artifact.recording_id}, "
                f"the event says {job.recording_id}"
            )
        if artifact.status_code in ("deleted", "failed"):
            raise Gone(f"transcript is {artifact.status_code} at Recall")
        if not artifact.is_done:
            raise RetryLater(f"transcript is {artifact.status_code} at Recall, not done yet")
        if not artifact.download_url:
            raise RetryLater("transcript is done but Recall gave no download_url yet")
        return artifact

    async def _download_fresh(self, job: Job) -> tuple[TranscriptArtifact, Path, str]:
        """Retrieve right before downloading (URLs expire); a refused (expired) URL gets a fresh one at once."""
        rounds = self.expired_url_retries + 1
        for round_number in range(1, rounds + 1):
            artifact = await self._retrieve(job)
            assert artifact.download_url is not None
            try:
                path, sha256 = await self._download(artifact.download_url, job)
            except RecallDownloadExpired as error:
                self.metrics.downloads.labels(outcome="expired").inc()
                _log.info("download URL refused; retrieving a fresh one", transcript_id=job.transcript_id)
                if round_number == rounds:
                    raise RetryLater(f"download URL refused {rounds} times: {error}") from None
                continue
            except RecallNotFound as error:
                # The object behind the URL is missing: the transcript may have been deleted since. Ask Recall again.
                self.metrics.downloads.labels(outcome="not_found").inc()
                if round_number == rounds:
                    raise RetryLater(f"download not found {rounds} times: {error}") from None
                continue
            except RecallDownloadTooLarge as error:
                self.metrics.downloads.labels(outcome="too_large").inc()
                raise Rejected(str(error)) from None
            except RecallDownloadNotAllowed as error:
                self.metrics.downloads.labels(outcome="not_allowed").inc()
                raise Rejected(str(error)) from None
            except RecallApiError as error:
                self.metrics.downloads.labels(outcome=error.kind.value).inc()
                raise _classify(error) from None
            self.metrics.downloads.labels(outcome="ok").inc()
            return artifact, path, sha256
        raise AssertionError("unreachable")  # pragma: no cover

    async def _download(self, url: str, job: Job) -> tuple[Path, str]:
        """Stream ``url`` into a spool file, hashing as it goes; the spool file is removed on any failure."""
        spool_dir = await asyncio.to_thread(self.store.spool_dir)
        path = spool_dir / f"download-{job.transcript_id}-{uuid.uuid4().hex[:8]}.tmp"
        digest = hashlib.sha256()
        size = 0
        started = time.perf_counter()
        handle = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in self.recall.stream_download(url, self.max_bytes):
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(handle.flush)
        except BaseException:
            handle.close()
            with contextlib.suppress(OSError):
                path.unlink()
            raise
        handle.close()
        self.metrics.download_seconds.observe(time.perf_counter() - started)
        self.metrics.download_bytes.inc(size)
        _log.info("transcript downloaded", transcript_id=job.transcript_id, bytes=size, url=safe_url(url))
        return path, digest.hexdigest()

    # --- validate, render, store ----------------------------------------------------------------------------------

    async def _analyse(self, spool: Path) -> Analysis:
        try:
            return await asyncio.to_thread(analyse, spool)
        except InvalidRecallPayload as error:
            self.metrics.downloads.labels(outcome="invalid").inc()
            raise Rejected(str(error)) from None

    async def _store(
        self,
        job: Job,
        keys: TranscriptKeys,
        artifact: TranscriptArtifact,
        spool: Path,
        sha256: str,
        analysis: Analysis,
    ) -> dict[str, StoredObject]:
        started = time.perf_counter()
        try:
            objects: dict[str, StoredObject] = {}
            for name in RENDERERS:
                rendition = RENDITIONS[name]
                data = await asyncio.to_thread(render_one, analysis, name)
                objects[name] = await self.store.put_bytes(keys.key(rendition.filename), data, rendition.content_type)
                del data
            if self.store_provider_data and artifact.provider_data_download_url:
                objects["provider_data"] = await self._store_provider_data(artifact.provider_data_download_url, keys)
            # Last of the objects, so a consumed spool file is only gone once everything else is in place.
            objects["raw"] = await self.store.put_file(keys.raw, spool, RAW_CONTENT_TYPE, sha256=sha256, consume=True)
        except StoreError as error:
            raise RetryLater(f"store: {error}") from None
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        for name, stored in objects.items():
            self.metrics.stored_bytes.labels(object=name).inc(stored.size_bytes)
        _log.info(
            "transcript objects stored",
            transcript_id=job.transcript_id,
            recording_id=job.recording_id,
            words=analysis.word_count,
        )
        return objects

    async def _store_provider_data(self, url: str, keys: TranscriptKeys) -> StoredObject:
        try:
            path, sha256 = await self._download(url, Job(keys.recording_id, keys.transcript_id, None, None, {}, {}))
        except (RecallDownloadTooLarge, RecallDownloadNotAllowed) as error:
            raise Rejected(f"provider data: {error}") from None
        except RecallApiError as error:
            raise RetryLater(
                f"provider data: {error}", kind=error.kind, retry_after=error.retry_after, status=error.status
            ) from None
        try:
            return await self.store.put_file(keys.provider_data, path, RAW_CONTENT_TYPE, sha256=sha256, consume=True)
        finally:
            await asyncio.to_thread(path.unlink, missing_ok=True)
