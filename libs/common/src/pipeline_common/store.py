"""The transcript store: one interface, two backends chosen by ``TRANSCRIPT_STORE_URL`` (DESIGN §5).

- ``file:///var/lib/transcripts``: a directory. Every object is written to a staging file, fsynced, renamed into
  place and its directory fsynced, so a reader (or a crash) never sees half an object.
- ``s3://bucket/prefix``: any S3-compatible server (AWS, MinIO, moto, ...). A PUT, single or multipart, is atomic.
  The endpoint comes from ``TRANSCRIPT_STORE_S3_ENDPOINT_URL`` or boto3's own ``AWS_ENDPOINT_URL``; credentials from
  boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, web identity, instance role). Needs the
  ``s3`` extra (``pipeline-common[s3]``).

Layout, per transcript (:class:`TranscriptKeys`)::

    recordings/<recording_id>/transcripts/<transcript_id>/
        transcript.json   the raw transcript JSON, byte for byte as Recall served it
        readable.json     speaker-grouped paragraphs
        transcript.txt    plain text
        transcript.vtt    WebVTT
        transcript.srt    SubRip
        provider_data.json  (optional) the provider's raw response
        manifest.json     sha256, size and content type of each object above; written last
    transcripts/<transcript_id>.json  index: which recording a transcript belongs to

A transcript is *complete* when its manifest exists: the manifest is written only after every object it lists, so
readers trust the manifest and nothing else. Writing the same transcript again writes the same bytes to the same keys
(idempotent); a manifest, once written, is never replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import re
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from pipeline_common.contracts import StoredObject, TranscriptReady
from pipeline_common.logging import get_logger

__all__ = [
    "CHUNK_BYTES",
    "Announcement",
    "FileStore",
    "Manifest",
    "ObjectInfo",
    "ObjectNotFound",
    "S3Store",
    "StoreError",
    "StoreUnavailable",
    "TranscriptKeys",
    "TranscriptStore",
    "check_id",
    "find_transcript",
    "open_store",
    "read_manifest",
    "sha256_file",
    "write_manifest",
]

_log = get_logger("pipeline_common.store")

CHUNK_BYTES: Final = 1024 * 1024
MANIFEST_MAX_BYTES: Final = 4 * 1024 * 1024
STAGING_DIR: Final = ".staging"
STALE_STAGING_SECONDS: Final = 3600.0
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_KEY_PART: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


class StoreError(Exception):
    """The store could not do what was asked. Worth retrying unless a subclass says otherwise."""


class StoreUnavailable(StoreError):
    """The store did not answer (network, server error, disk full, ...): retry later."""


class ObjectNotFound(StoreError):
    """No object under that key."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size_bytes: int
    content_type: str | None = None


def _check_key(key: str) -> str:
    """A relative key of safe parts: no absolute paths, no ``..``, no empty or hidden parts."""
    parts = key.split("/")
    if not key or any(not _KEY_PART.match(part) or part in {".", ".."} for part in parts):
        raise ValueError(f"invalid store key {key[:200]!r}")
    return key


def check_id(value: str, what: str) -> str:
    """Recall ids as they may appear in a key: 1-128 letters, digits, ``-`` or ``_``."""
    if not isinstance(value, str) or not _ID.match(value):
        raise ValueError(f"{what} must be 1-128 letters, digits, '-' or '_' to be stored")
    return value


def sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class TranscriptStore(ABC):
    """Objects under keys, with a URI each. Every method is async; blocking I/O runs in a worker thread."""

    url: str

    @abstractmethod
    def uri(self, key: str) -> str:
        """The public URI of ``key`` (``file:///...`` or ``s3://bucket/...``)."""

    @abstractmethod
    def spool_dir(self) -> Path:
        """A local directory for downloads about to be stored (same filesystem as the store when it is one)."""

    @abstractmethod
    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        """Write ``data`` under ``key`` atomically (replacing what was there)."""

    @abstractmethod
    async def put_file(
        self, key: str, path: Path, content_type: str, *, sha256: str | None = None, consume: bool = False
    ) -> StoredObject:
        """Write the local file ``path`` under ``key`` atomically. ``consume``: the store may take the file over
        (rename it into place) instead of copying it; the caller must not use ``path`` afterwards."""

    @abstractmethod
    async def head(self, key: str) -> ObjectInfo | None:
        """Size and content type of ``key``, or None when there is no such object."""

    @abstractmethod
    async def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        """The whole object (ObjectNotFound when missing; StoreError when larger than ``max_bytes``)."""

    @abstractmethod
    def iter_bytes(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """The object in chunks, without holding it in memory (ObjectNotFound when missing)."""

    @abstractmethod
    async def list_keys(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (a folder-like prefix ending in ``/``), sorted."""

    @abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; no error when it does not exist."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def put_json(self, key: str, value: Any) -> StoredObject:
        data = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()
        return await self.put_bytes(key, data, "application/json")

    async def get_json(self, key: str, *, max_bytes: int = MANIFEST_MAX_BYTES) -> Any:
        raw = await self.get_bytes(key, max_bytes=max_bytes)
        try:
            return json.loads(raw)
        except ValueError as error:
            raise StoreError(f"{key} is not valid JSON: {error}") from None


# --- file:// -------------------------------------------------------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FileStore(TranscriptStore):
    """A directory on a local (or mounted) filesystem."""

    def __init__(self, root: Path) -> None:
        if not root.is_absolute():
            raise ValueError("a file:// store needs an absolute path, e.g. file:///var/lib/transcripts")
        self.root = root
        self.url = root.as_uri()
        self._staging = root / STAGING_DIR
        self._prepared = False

    def __repr__(self) -> str:
        return f"FileStore({str(self.root)!r})"

    def _prepare(self) -> None:
        if self._prepared:
            return
        self._staging.mkdir(parents=True, exist_ok=True)
        # Staging files older than an hour belong to a writer that crashed: remove them (a live write takes seconds).
        cutoff = time.time() - STALE_STAGING_SECONDS
        for leftover in self._staging.iterdir():
            with contextlib.suppress(OSError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
        self._prepared = True

    def path(self, key: str) -> Path:
        return self.root.joinpath(*_check_key(key).split("/"))

    def uri(self, key: str) -> str:
        return self.path(key).as_uri()

    def spool_dir(self) -> Path:
        self._prepare()
        return self._staging

    def staging_files(self) -> list[Path]:
        """Files in the staging area (for tests and operators: should be empty when no write is in progress)."""
        return sorted(self._staging.iterdir()) if self._staging.exists() else []

    def _make_parents(self, target: Path) -> None:
        missing: list[Path] = []
        parent = target.parent
        while not parent.exists():
            missing.append(parent)
            parent = parent.parent
        target.parent.mkdir(parents=True, exist_ok=True)
        for created in reversed(missing):  # make each new directory's entry durable in its parent
            _fsync_dir(created.parent)

    def _install(self, staged: Path, key: str) -> None:
        target = self.path(key)
        self._make_parents(target)
        os.replace(staged, target)
        _fsync_dir(target.parent)

    def _write_bytes(self, key: str, data: bytes) -> None:
        self._prepare()
        staged = self._staging / f"{uuid.uuid4().hex}.tmp"
        try:
            with staged.open("wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            self._install(staged, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    def _write_file(self, key: str, path: Path, consume: bool) -> None:
        self._prepare()
        if consume and path.parent.resolve() == self._staging.resolve():
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
            self._install(path, key)
            return
        staged = self._staging / f"{uuid.uuid4().hex}.tmp"
        try:
            with path.open("rb") as source, staged.open("wb") as handle:
                while chunk := source.read(CHUNK_BYTES):
                    handle.write(chunk)
                handle.flush()
                os.fsync(handle.fileno())
            self._install(staged, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()
        if consume:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        try:
            await asyncio.to_thread(self._write_bytes, key, data)
        except OSError as error:
            raise StoreUnavailable(f"could not write {key}: {error.strerror or error}") from error
        return StoredObject(
            uri=self.uri(key), sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), content_type=content_type
        )

    async def put_file(
        self, key: str, path: Path, content_type: str, *, sha256: str | None = None, consume: bool = False
    ) -> StoredObject:
        try:
            if sha256 is None:
                sha256, size = await asyncio.to_thread(sha256_file, path)
            else:
                size = (await asyncio.to_thread(path.stat)).st_size
            await asyncio.to_thread(self._write_file, key, path, consume)
        except OSError as error:
            raise StoreUnavailable(f"could not write {key}: {error.strerror or error}") from error
        return StoredObject(uri=self.uri(key), sha256=sha256, size_bytes=size, content_type=content_type)

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            stat = await asyncio.to_thread(self.path(key).stat)
        except FileNotFoundError:
            return None
        except OSError as error:
            raise StoreUnavailable(f"could not read {key}: {error.strerror or error}") from error
        return ObjectInfo(key=key, size_bytes=stat.st_size)

    async def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        path = self.path(key)

        def read() -> bytes:
            with path.open("rb") as handle:
                data = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
            if max_bytes is not None and len(data) > max_bytes:
                raise StoreError(f"{key} is larger than {max_bytes} bytes")
            return data

        try:
            return await asyncio.to_thread(read)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        except OSError as error:
            raise StoreUnavailable(f"could not read {key}: {error.strerror or error}") from error

    async def iter_bytes(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        path = self.path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except FileNotFoundError:
            raise ObjectNotFound(key) from None
        try:
            while chunk := await asyncio.to_thread(handle.read, chunk_bytes):
                yield chunk
        finally:
            handle.close()

    async def list_keys(self, prefix: str) -> list[str]:
        base = self.root.joinpath(*[part for part in prefix.split("/") if part])

        def walk() -> list[str]:
            if not base.is_dir():
                return []
            return sorted(
                path.relative_to(self.root).as_posix()
                for path in base.rglob("*")
                if path.is_file() and STAGING_DIR not in path.relative_to(self.root).parts
            )

        return await asyncio.to_thread(walk)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            await asyncio.to_thread(self.path(key).unlink)


# --- s3:// ---------------------------------------------------------------------------------------------------------


class S3Store(TranscriptStore):
    """A bucket (and key prefix) on any S3-compatible server, through boto3 in worker threads."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing_style: Literal["auto", "path", "virtual"] = "auto",
        spool_dir: Path | None = None,
        multipart_threshold: int = 16 * 1024 * 1024,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ValueError("an s3:// store needs a bucket, e.g. s3://transcripts/recall-pipeline")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self._spool = spool_dir
        if client is None:
            try:
                import boto3
                from boto3.s3.transfer import TransferConfig
                from botocore.config import Config
            except ImportError as error:  # pragma: no cover - the s3 extra is missing
                raise ValueError("the s3:// store needs boto3: install pipeline-common[s3]") from error
            config = Config(
                s3={"addressing_style": addressing_style},
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=10,
                read_timeout=60,
                max_pool_connections=20,
            )
            client = boto3.session.Session().client(
                "s3", endpoint_url=endpoint_url or None, region_name=region or None, config=config
            )
            self._transfer_config: Any = TransferConfig(
                multipart_threshold=multipart_threshold, multipart_chunksize=multipart_threshold, use_threads=False
            )
        else:
            self._transfer_config = None
        self._client = client

    def __repr__(self) -> str:
        return f"S3Store({self.url!r})"

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def spool_dir(self) -> Path:
        directory = self._spool or Path(os.environ.get("TMPDIR", "/tmp")) / "transcript-spool"  # noqa: S108
        directory.mkdir(parents=True, exist_ok=True)
        return directory

    @staticmethod
    def _failure(error: Exception, key: str, doing: str) -> StoreError:
        code = ""
        response = getattr(error, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NotFound"}:
            return ObjectNotFound(key)
        detail = code or type(error).__name__
        return StoreUnavailable(f"could not {doing} {key}: {detail}")

    async def put_bytes(self, key: str, data: bytes, content_type: str) -> StoredObject:
        digest = hashlib.sha256(data).hexdigest()
        full = self._key(key)
        try:
            await asyncio.to_thread(
                self._client.put_object,
                Bucket=self.bucket,
                Key=full,
                Body=data,
                ContentType=content_type,
                Metadata={"sha256": digest},
            )
        except Exception as error:  # botocore raises many unrelated types
            raise self._failure(error, key, "write") from error
        return StoredObject(uri=self.uri(key), sha256=digest, size_bytes=len(data), content_type=content_type)

    async def put_file(
        self, key: str, path: Path, content_type: str, *, sha256: str | None = None, consume: bool = False
    ) -> StoredObject:
        if sha256 is None:
            sha256, size = await asyncio.to_thread(sha256_file, path)
        else:
            size = (await asyncio.to_thread(path.stat)).st_size
        full = self._key(key)
        extra = {"ContentType": content_type, "Metadata": {"sha256": sha256}}
        try:
            await asyncio.to_thread(
                self._client.upload_file,
                str(path),
                self.bucket,
                full,
                ExtraArgs=extra,
                Config=self._transfer_config,
            )
        except Exception as error:
            raise self._failure(error, key, "write") from error
        if consume:
            await asyncio.to_thread(path.unlink, missing_ok=True)
        return StoredObject(uri=self.uri(key), sha256=sha256, size_bytes=size, content_type=content_type)

    async def head(self, key: str) -> ObjectInfo | None:
        full = self._key(key)
        try:
            response = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=full)
        except Exception as error:
            failure = self._failure(error, key, "read")
            if isinstance(failure, ObjectNotFound):
                return None
            raise failure from error
        return ObjectInfo(key=key, size_bytes=int(response["ContentLength"]), content_type=response.get("ContentType"))

    async def get_bytes(self, key: str, *, max_bytes: int | None = None) -> bytes:
        full = self._key(key)

        def read() -> bytes:
            response = self._client.get_object(Bucket=self.bucket, Key=full)
            body = response["Body"]
            try:
                if max_bytes is not None and int(response.get("ContentLength", 0)) > max_bytes:
                    raise StoreError(f"{key} is larger than {max_bytes} bytes")
                data: bytes = body.read()
                return data
            finally:
                body.close()

        try:
            return await asyncio.to_thread(read)
        except StoreError:
            raise
        except Exception as error:
            raise self._failure(error, key, "read") from error

    async def iter_bytes(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        full = self._key(key)
        try:
            response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=full)
        except Exception as error:
            raise self._failure(error, key, "read") from error
        body = response["Body"]
        try:
            while True:
                try:
                    chunk: bytes = await asyncio.to_thread(body.read, chunk_bytes)
                except Exception as error:
                    raise self._failure(error, key, "read") from error
                if not chunk:
                    break
                yield chunk
        finally:
            body.close()

    async def list_keys(self, prefix: str) -> list[str]:
        full = self._key(prefix.rstrip("/")) + "/" if prefix.strip("/") else (f"{self.prefix}/" if self.prefix else "")
        strip = f"{self.prefix}/" if self.prefix else ""

        def walk() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                keys.extend(item["Key"][len(strip) :] for item in page.get("Contents", []))
            return sorted(keys)

        try:
            return await asyncio.to_thread(walk)
        except Exception as error:
            raise self._failure(error, prefix, "list") from error

    async def delete(self, key: str) -> None:
        full = self._key(key)
        try:
            await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=full)
        except Exception as error:
            failure = self._failure(error, key, "delete")
            if not isinstance(failure, ObjectNotFound):
                raise failure from error

    async def close(self) -> None:
        close = getattr(self._client, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


def open_store(
    url: str,
    *,
    s3_endpoint_url: str | None = None,
    s3_region: str | None = None,
    s3_addressing_style: Literal["auto", "path", "virtual"] = "auto",
    spool_dir: Path | None = None,
) -> TranscriptStore:
    """The store ``url`` names: ``file:///absolute/path`` or ``s3://bucket/prefix``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in {"", "localhost"}:
            raise ValueError("a file:// store URL has no host: file:///absolute/path")
        return FileStore(Path(unquote(parts.path)))
    if parts.scheme == "s3":
        return S3Store(
            parts.netloc,
            unquote(parts.path),
            endpoint_url=s3_endpoint_url,
            region=s3_region,
            addressing_style=s3_addressing_style,
            spool_dir=spool_dir,
        )
    raise ValueError("TRANSCRIPT_STORE_URL must be file:///absolute/path or s3://bucket/prefix")


# --- layout and manifest -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TranscriptKeys:
    """Where one transcript's objects live in the store."""

    recording_id: str
    transcript_id: str

    def __post_init__(self) -> None:
        check_id(self.recording_id, "recording_id")
        check_id(self.transcript_id, "transcript_id")

    @property
    def prefix(self) -> str:
        return f"recordings/{self.recording_id}/transcripts/{self.transcript_id}/"

    def key(self, name: str) -> str:
        return self.prefix + name

    @property
    def raw(self) -> str:
        return self.key("transcript.json")

    @property
    def readable(self) -> str:
        return self.key("readable.json")

    @property
    def txt(self) -> str:
        return self.key("transcript.txt")

    @property
    def vtt(self) -> str:
        return self.key("transcript.vtt")

    @property
    def srt(self) -> str:
        return self.key("transcript.srt")

    @property
    def provider_data(self) -> str:
        return self.key("provider_data.json")

    @property
    def manifest(self) -> str:
        return self.key("manifest.json")

    @staticmethod
    def index(transcript_id: str) -> str:
        return f"transcripts/{check_id(transcript_id, 'transcript_id')}.json"


class Announcement(BaseModel):
    """Where the transcript's ``transcripts.ready`` event goes, recorded before it is sent: after a crash, the
    fetcher looks for ``event_id`` in ``partition`` from ``floor_offset`` on before announcing again."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    topic: str
    partition: int = Field(ge=0)
    floor_offset: int = Field(ge=0)
    event_id: str


class Manifest(BaseModel):
    """What a complete stored transcript consists of. ``objects`` names: raw, readable, txt, vtt, srt and, when
    stored, provider_data."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: Literal[1] = 1
    recording_id: str
    transcript_id: str
    objects: dict[str, StoredObject]
    stored_at: AwareDatetime
    event: TranscriptReady | None = None
    announcement: Announcement | None = None

    def object(self, name: str) -> StoredObject | None:
        return self.objects.get(name)


async def write_manifest(store: TranscriptStore, manifest: Manifest) -> StoredObject:
    """Write the index entry, then the manifest (the manifest is the commit point of a stored transcript)."""
    keys = TranscriptKeys(manifest.recording_id, manifest.transcript_id)
    await store.put_json(
        TranscriptKeys.index(manifest.transcript_id),
        {"recording_id": manifest.recording_id, "transcript_id": manifest.transcript_id, "manifest": keys.manifest},
    )
    data = manifest.model_dump_json(indent=2).encode() + b"\n"
    return await store.put_bytes(keys.manifest, data, "application/json")


async def read_manifest(store: TranscriptStore, keys: TranscriptKeys) -> Manifest | None:
    """The transcript's manifest, or None when it is not (completely) stored."""
    try:
        raw = await store.get_bytes(keys.manifest, max_bytes=MANIFEST_MAX_BYTES)
    except ObjectNotFound:
        return None
    try:
        return Manifest.model_validate_json(raw)
    except ValidationError as error:
        raise StoreError(f"{keys.manifest} is not a valid manifest ({error.error_count()} errors)") from None


async def find_transcript(store: TranscriptStore, transcript_id: str) -> TranscriptKeys | None:
    """Where a transcript is stored, by its id alone (through the index), or None."""
    try:
        index = await store.get_json(TranscriptKeys.index(transcript_id))
    except ObjectNotFound:
        return None
    if not isinstance(index, dict) or not isinstance(index.get("recording_id"), str):
        raise StoreError(f"index entry of {transcript_id} is not valid")
    return TranscriptKeys(index["recording_id"], transcript_id)
