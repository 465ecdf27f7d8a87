"""``file://``: a directory. Every object goes to a staging file, is fsynced, renamed into place and its directory
fsynced, so a reader (or a crash) never sees half an object."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from functools import partial
from pathlib import Path
from typing import BinaryIO

from pipeline_common.contracts import StoredObject
from pipeline_common.store.base import (
    CHUNK_BYTES,
    STAGING_DIR,
    STALE_STAGING_SECONDS,
    LocalObject,
    ObjectInfo,
    TranscriptStore,
    check_key,
    sha256_file,
)
from pipeline_common.store.errors import ObjectNotFound, StoreError, StoreUnavailable


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    shutil.copyfileobj(source, target, CHUNK_BYTES)


def _write(data: bytes, target: BinaryIO) -> None:
    target.write(data)


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
        return self.root.joinpath(*check_key(key).split("/"))

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

    def _install_staged(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        """Write a staging file with ``fill``, fsync it and rename it into place; never leave it behind."""
        staged = self._staging / f"{uuid.uuid4().hex}.tmp"
        try:
            with staged.open("wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            self._install(staged, key)
        finally:
            with contextlib.suppress(FileNotFoundError):
                staged.unlink()

    def _write_bytes(self, key: str, data: bytes) -> None:
        self._prepare()
        self._install_staged(key, lambda handle: handle.write(data))

    def _write_file(self, key: str, path: Path, consume: bool) -> None:
        self._prepare()
        if consume and path.parent.resolve() == self._staging.resolve():
            with path.open("rb+") as handle:
                os.fsync(handle.fileno())
            self._install(path, key)
            return
        with path.open("rb") as source:
            self._install_staged(key, lambda handle: shutil.copyfileobj(source, handle, CHUNK_BYTES))
        if consume:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _in_staging(self, path: Path) -> bool:
        # The fetcher's files come from spool_dir(), so the cheap comparison answers; resolve() is a syscall a part.
        return path.parent == self._staging or path.parent.resolve() == self._staging.resolve()

    def _write_files(self, objects: Sequence[LocalObject]) -> list[tuple[str, int]]:
        """Every object fsynced and renamed into place, in order; then each directory they went to, once."""
        self._prepare()
        done: list[tuple[str, int]] = []
        directories: dict[Path, None] = {}
        for item in objects:
            sha256, size = (item.sha256, item.path.stat().st_size) if item.sha256 else sha256_file(item.path)
            target = self.path(item.key)
            self._make_parents(target)
            if item.consume and self._in_staging(item.path):
                with item.path.open("rb+") as handle:
                    os.fsync(handle.fileno())
                os.replace(item.path, target)
            else:
                with item.path.open("rb") as source:
                    self._install_staged(item.key, partial(_copy, source))
                if item.consume:
                    with contextlib.suppress(FileNotFoundError):
                        item.path.unlink()
            directories[target.parent] = None
            done.append((sha256, size))
        for directory in directories:
            _fsync_dir(directory)
        return done

    async def put_files(self, objects: Sequence[LocalObject]) -> list[StoredObject]:
        try:
            done = await asyncio.to_thread(self._write_files, objects)
        except OSError as error:
            raise StoreUnavailable(f"could not write {len(objects)} objects: {error.strerror or error}") from error
        return [
            StoredObject(uri=self.uri(item.key), sha256=sha256, size_bytes=size, content_type=item.content_type)
            for item, (sha256, size) in zip(objects, done, strict=True)
        ]

    def _write_many(self, objects: Sequence[tuple[str, bytes, str]]) -> None:
        self._prepare()
        for key, data, _ in objects:
            self._install_staged(key, partial(_write, data))

    async def put_many(self, objects: Sequence[tuple[str, bytes, str]]) -> list[StoredObject]:
        try:
            await asyncio.to_thread(self._write_many, objects)
        except OSError as error:
            raise StoreUnavailable(f"could not write {len(objects)} objects: {error.strerror or error}") from error
        return [
            StoredObject(
                uri=self.uri(key), sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data), content_type=ct
            )
            for key, data, ct in objects
        ]

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
