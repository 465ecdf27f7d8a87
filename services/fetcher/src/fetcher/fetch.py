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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from fetcher.budget import ByteBudget
from fetcher.metrics import FetcherMetrics
from fetcher.transcript import Analysis, analyse, write_renditions
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
from pipeline_common.store import (
    RENDITIONS,
    LocalObject,
    Manifest,
    StoreError,
    TranscriptKeys,
    TranscriptStore,
    read_manifest,
)

_log = get_logger("fetcher.fetch")
RAW_CONTENT_TYPE: Final = "application/json"
SPOOL_WRITE_BYTES: Final = 1024 * 1024


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
class Spooled:
    """A download in its spool file, with the sha256 and size of what was written."""

    path: Path
    sha256: str
    size: int


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
    analysis_budget: ByteBudget
    _spool_dir: Path | None = field(default=None, init=False)

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
        artifact, spool = await self._download_fresh(job)
        rendered: dict[str, tuple[Path, str]] = {}
        try:
            started = time.perf_counter()
            analysis, rendered = await self._prepare(spool)
            objects = await self._store(job, keys, artifact, spool, analysis, rendered, started)
        except BaseException:
            # Everything is consumed by the store on success; after a failure nothing may be left in staging.
            await asyncio.to_thread(_remove, [spool.path, *(path for path, _ in rendered.values())])
            raise
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

    async def _download_fresh(self, job: Job) -> tuple[TranscriptArtifact, Spooled]:
        """Retrieve right before downloading (URLs expire); a refused (expired) URL gets a fresh one at once."""
        rounds = self.expired_url_retries + 1
        for round_number in range(1, rounds + 1):
            artifact = await self._retrieve(job)
            assert artifact.download_url is not None
            try:
                spooled = await self._download(artifact.download_url, job)
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
            return artifact, spooled
        raise AssertionError("unreachable")  # pragma: no cover

    async def _download(self, url: str, job: Job) -> Spooled:
        """Stream ``url`` into a spool file, hashing as it goes; the spool file is removed on any failure. Chunks are
        written in batches (one worker-thread call per ``SPOOL_WRITE_BYTES``, one in all for a small transcript)."""
        if self._spool_dir is None:
            self._spool_dir = await asyncio.to_thread(self.store.spool_dir)
        spool = _Spool(self._spool_dir / f"download-{job.transcript_id}-{uuid.uuid4().hex[:8]}.tmp")
        started = time.perf_counter()
        pending: list[bytes] = []
        pending_bytes = 0
        try:
            async for chunk in self.recall.stream_download(url, self.max_bytes):
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes >= SPOOL_WRITE_BYTES:
                    await asyncio.to_thread(spool.write, pending)
                    pending, pending_bytes = [], 0
            await asyncio.to_thread(spool.write, pending, True)
        except BaseException:
            spool.discard()
            raise
        self.metrics.download_seconds.observe(time.perf_counter() - started)
        self.metrics.download_bytes.inc(spool.size)
        _log.debug("transcript downloaded", transcript_id=job.transcript_id, bytes=spool.size, url=safe_url(url))
        return Spooled(spool.path, spool.digest.hexdigest(), spool.size)

    # --- validate, render, store ----------------------------------------------------------------------------------

    async def _prepare(self, spool: Spooled) -> tuple[Analysis, dict[str, tuple[Path, str]]]:
        """Validate and render, in one worker-thread call, within the analysis budget (:mod:`fetcher.budget`): the
        analysis, and each rendition in a staging file."""
        try:
            async with self.analysis_budget.hold(spool.size):
                return await asyncio.to_thread(_analyse_and_render, spool.path)
        except InvalidRecallPayload as error:
            self.metrics.downloads.labels(outcome="invalid").inc()
            raise Rejected(str(error)) from None

    async def _store(
        self,
        job: Job,
        keys: TranscriptKeys,
        artifact: TranscriptArtifact,
        spool: Spooled,
        analysis: Analysis,
        rendered: dict[str, tuple[Path, str]],
        started: float,
    ) -> dict[str, StoredObject]:
        objects: dict[str, LocalObject] = {}
        for name, (path, digest) in rendered.items():
            rendition = RENDITIONS[name]
            objects[name] = LocalObject(keys.key(rendition.filename), path, rendition.content_type, digest, True)
        try:
            if self.store_provider_data and artifact.provider_data_download_url:
                url = artifact.provider_data_download_url
                objects["provider_data"] = await self._download_provider_data(url, keys)
            # Last of the objects, so a consumed spool file is only gone once everything else is in place.
            objects["raw"] = LocalObject(keys.raw, spool.path, RAW_CONTENT_TYPE, spool.sha256, True)
            stored = await self.store.put_files(list(objects.values()))
        except StoreError as error:
            raise RetryLater(f"store: {error}") from None
        finally:
            if "provider_data" in objects:  # consumed on success; never left in staging after a failure
                await asyncio.to_thread(_remove, [objects["provider_data"].path])
        self.metrics.store_seconds.observe(time.perf_counter() - started)
        result = dict(zip(objects, stored, strict=True))
        for name, item in result.items():
            self.metrics.stored_bytes.labels(object=name).inc(item.size_bytes)
        _log.debug(
            "transcript objects stored",
            transcript_id=job.transcript_id,
            recording_id=job.recording_id,
            words=analysis.word_count,
        )
        return result

    async def _download_provider_data(self, url: str, keys: TranscriptKeys) -> LocalObject:
        try:
            spooled = await self._download(url, Job(keys.recording_id, keys.transcript_id, None, None, {}, {}))
        except (RecallDownloadTooLarge, RecallDownloadNotAllowed) as error:
            raise Rejected(f"provider data: {error}") from None
        except RecallApiError as error:
            raise RetryLater(
                f"provider data: {error}", kind=error.kind, retry_after=error.retry_after, status=error.status
            ) from None
        return LocalObject(keys.provider_data, spooled.path, RAW_CONTENT_TYPE, spooled.sha256, True)


def _analyse_and_render(spool: Path) -> tuple[Analysis, dict[str, tuple[Path, str]]]:
    analysis = analyse(spool)
    return analysis, write_renditions(analysis, spool.parent, spool.stem)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


class _Spool:
    """The download's file, opened on the first write (from a worker thread), hashed as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.digest = hashlib.sha256()
        self.size = 0
        self._handle: BinaryIO | None = None

    def write(self, chunks: list[bytes], last: bool = False) -> None:
        if self._handle is None:
            self._handle = self.path.open("wb")
        for chunk in chunks:
            self.digest.update(chunk)
            self._handle.write(chunk)
            self.size += len(chunk)
        if last:
            self._handle.close()

    def discard(self) -> None:
        if self._handle is not None:
            self._handle.close()
        with contextlib.suppress(OSError):
            self.path.unlink()
