"""The store's interface: errors, key and id checks, and :class:`TranscriptStore`, the base of every backend."""

from __future__ import annotations

import hashlib
import json
import re
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from pipeline_common.contracts import StoredObject
from pipeline_common.store.errors import StoreError

CHUNK_BYTES: Final = 1024 * 1024
MANIFEST_MAX_BYTES: Final = 4 * 1024 * 1024
STAGING_DIR: Final = ".staging"
STALE_STAGING_SECONDS: Final = 3600.0
_ID: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_KEY_PART: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size_bytes: int
    content_type: str | None = None


def check_key(key: str) -> str:
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


@dataclass(frozen=True, slots=True)
class LocalObject:
    """A local file to store under ``key`` (see :meth:`TranscriptStore.put_files`)."""

    key: str
    path: Path
    content_type: str
    sha256: str | None = None
    consume: bool = False


def json_bytes(value: Any) -> bytes:
    """The store's compact, sorted JSON (index entries)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


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

    async def put_files(self, objects: Sequence[LocalObject]) -> list[StoredObject]:
        """Store several local files, in order (each atomically, as :meth:`put_file`). A backend may do them in one
        go (the file store: one worker-thread call, one directory fsync)."""
        return [
            await self.put_file(item.key, item.path, item.content_type, sha256=item.sha256, consume=item.consume)
            for item in objects
        ]

    async def put_many(self, objects: Sequence[tuple[str, bytes, str]]) -> list[StoredObject]:
        """Several ``(key, data, content_type)`` objects, written in order, each atomically (:meth:`put_bytes`)."""
        return [await self.put_bytes(key, data, content_type) for key, data, content_type in objects]

    async def put_json(self, key: str, value: Any) -> StoredObject:
        return await self.put_bytes(key, json_bytes(value), "application/json")

    async def get_json(self, key: str, *, max_bytes: int = MANIFEST_MAX_BYTES) -> Any:
        raw = await self.get_bytes(key, max_bytes=max_bytes)
        try:
            return json.loads(raw)
        except ValueError as error:
            raise StoreError(f"{key} is not valid JSON: {error}") from None
