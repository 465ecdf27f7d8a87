"""The transcript store, both backends: file:// on a temporary directory, s3:// on a real S3-compatible server
(moto's standalone server on loopback). Same interface, same behaviour."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipeline_common.contracts import StoredObject
from pipeline_common.store import (
    STAGING_DIR,
    FileStore,
    LocalObject,
    Manifest,
    ObjectNotFound,
    S3Store,
    StoreError,
    TranscriptKeys,
    TranscriptStore,
    find_transcript,
    open_store,
    read_manifest,
    write_manifest,
)
from tests.fetcher.support import aws_credentials, create_bucket, s3_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with aws_credentials(), s3_server() as endpoint:
        yield endpoint


@pytest.fixture(params=["file", "s3"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TranscriptStore]:
    if request.param == "file":
        opened = open_store((tmp_path / "store").as_uri())
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = f"store-{uuid.uuid4().hex[:10]}"
        create_bucket(endpoint, bucket)
        opened = open_store(
            f"s3://{bucket}/some/prefix", s3_endpoint_url=endpoint, s3_addressing_style="path", spool_dir=tmp_path
        )
    yield opened
    await opened.close()


async def test_put_get_head_list_delete(store: TranscriptStore, tmp_path: Path) -> None:
    stored = await store.put_bytes("recordings/r1/a.txt", b"hello", "text/plain")
    assert stored.sha256 == hashlib.sha256(b"hello").hexdigest() and stored.size_bytes == 5
    assert stored.uri == store.uri("recordings/r1/a.txt")
    assert await store.get_bytes("recordings/r1/a.txt") == b"hello"
    info = await store.head("recordings/r1/a.txt")
    assert info is not None and info.size_bytes == 5
    assert await store.head("recordings/r1/missing") is None
    with pytest.raises(ObjectNotFound):
        await store.get_bytes("recordings/r1/missing")
    with pytest.raises(StoreError):
        await store.get_bytes("recordings/r1/a.txt", max_bytes=3)

    big = os.urandom(3 * 1024 * 1024 + 17)
    source = tmp_path / "big.bin"
    source.write_bytes(big)
    from_file = await store.put_file("recordings/r1/big.bin", source, "application/octet-stream")
    assert from_file.sha256 == hashlib.sha256(big).hexdigest() and from_file.size_bytes == len(big)
    chunks = [chunk async for chunk in store.iter_bytes("recordings/r1/big.bin", chunk_bytes=1024 * 1024)]
    assert b"".join(chunks) == big and len(chunks) >= 3
    assert source.exists()  # not consumed unless asked

    assert await store.list_keys("recordings/r1/") == ["recordings/r1/a.txt", "recordings/r1/big.bin"]
    await store.delete("recordings/r1/a.txt")
    await store.delete("recordings/r1/a.txt")  # no error the second time
    assert await store.list_keys("recordings/") == ["recordings/r1/big.bin"]


async def test_writes_are_idempotent(store: TranscriptStore) -> None:
    first = await store.put_bytes("x/y.json", b'{"a":1}', "application/json")
    second = await store.put_bytes("x/y.json", b'{"a":1}', "application/json")
    assert first == second
    assert await store.list_keys("x/") == ["x/y.json"]


async def test_put_file_can_consume_the_spool_file(store: TranscriptStore) -> None:
    spool = store.spool_dir() / f"{uuid.uuid4().hex}.tmp"
    spool.write_bytes(b"[]")
    stored = await store.put_file("k/raw.json", spool, "application/json", consume=True)
    assert not spool.exists()
    assert await store.get_bytes("k/raw.json") == b"[]" and stored.size_bytes == 2


async def test_put_files_stores_several_files_in_order(store: TranscriptStore, tmp_path: Path) -> None:
    """What the fetcher stores per transcript in one call: staged files (consumed), one given its sha256, one not,
    and a file outside the staging area that is copied and kept."""
    staged = [store.spool_dir() / f"{uuid.uuid4().hex}.tmp" for _ in range(2)]
    staged[0].write_bytes(b"one")
    staged[1].write_bytes(b"two!")
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"three")
    stored = await store.put_files(
        [
            LocalObject("t/a.txt", staged[0], "text/plain", hashlib.sha256(b"one").hexdigest(), consume=True),
            LocalObject("t/b.txt", staged[1], "text/plain", consume=True),
            LocalObject("u/c.bin", outside, "application/octet-stream"),
        ]
    )
    assert [(s.sha256, s.size_bytes, s.content_type) for s in stored] == [
        (hashlib.sha256(b"one").hexdigest(), 3, "text/plain"),
        (hashlib.sha256(b"two!").hexdigest(), 4, "text/plain"),
        (hashlib.sha256(b"three").hexdigest(), 5, "application/octet-stream"),
    ]
    assert [await store.get_bytes(key) for key in ("t/a.txt", "t/b.txt", "u/c.bin")] == [b"one", b"two!", b"three"]
    assert not any(path.exists() for path in staged) and outside.exists()
    many = await store.put_many([("i/x.json", b"{}", "application/json"), ("i/y.json", b"[1]", "application/json")])
    assert [(m.uri, m.size_bytes) for m in many] == [(store.uri("i/x.json"), 2), (store.uri("i/y.json"), 3)]
    assert await store.get_bytes("i/y.json") == b"[1]"


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "a/./b", ".hidden/x", "a/b\\c", "a b"])
async def test_unsafe_keys_are_refused(store: TranscriptStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid store key"):
        await store.put_bytes(key, b"x", "text/plain")


def test_transcript_keys_validate_ids() -> None:
    keys = TranscriptKeys("rec_1", "tr-2")
    assert keys.raw == "recordings/rec_1/transcripts/tr-2/transcript.json"
    assert keys.manifest.endswith("tr-2/manifest.json") and TranscriptKeys.index("tr-2") == "transcripts/tr-2.json"
    for bad in ("", "../x", "a/b", "x" * 200):
        with pytest.raises(ValueError, match="to be stored"):
            TranscriptKeys(bad, "t")


async def test_manifest_round_trip_and_index(store: TranscriptStore) -> None:
    keys = TranscriptKeys("rec-1", "tr-1")
    assert await read_manifest(store, keys) is None
    assert await find_transcript(store, "tr-1") is None
    raw = await store.put_bytes(keys.raw, b"[]", "application/json")
    manifest = Manifest(recording_id="rec-1", transcript_id="tr-1", objects={"raw": raw}, stored_at=datetime.now(UTC))
    await write_manifest(store, manifest)
    assert await read_manifest(store, keys) == manifest
    assert await find_transcript(store, "tr-1") == keys
    await store.put_bytes(keys.manifest, b"{not json", "application/json")
    with pytest.raises(StoreError, match="not a valid manifest"):
        await read_manifest(store, keys)


def test_store_urls() -> None:
    file_store = open_store("file:///var/lib/transcripts")
    assert isinstance(file_store, FileStore) and file_store.uri("a/b.json") == "file:///var/lib/transcripts/a/b.json"
    s3 = open_store("s3://bucket/pre/fix/", s3_endpoint_url="http://127.0.0.1:1")
    assert isinstance(s3, S3Store) and s3.uri("a/b.json") == "s3://bucket/pre/fix/a/b.json"
    assert open_store("s3://bucket", s3_endpoint_url="http://127.0.0.1:1").uri("k") == "s3://bucket/k"
    for bad in ("file://host/x", "file:relative", "http://x/y", "s3:///no-bucket"):
        with pytest.raises(ValueError, match=r"(?i)store"):
            open_store(bad)


async def test_file_writes_leave_no_staging_files_and_stale_ones_are_cleaned(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FileStore(root)
    await store.put_bytes("a/b.txt", b"x", "text/plain")
    assert store.staging_files() == []
    stale = root / STAGING_DIR / "crashed-writer.tmp"
    stale.write_bytes(b"half")
    old = time.time() - 7200
    os.utime(stale, (old, old))
    fresh = root / STAGING_DIR / "live-writer.tmp"
    fresh.write_bytes(b"in progress")
    FileStore(root).spool_dir()  # a new store instance (a restarted worker) cleans up after crashed writers
    assert store.staging_files() == [fresh]
    assert (root / "a" / "b.txt").read_bytes() == b"x"


async def test_s3_store_unreachable_is_a_retryable_store_error(tmp_path: Path) -> None:
    with aws_credentials():
        store = S3Store("bucket", endpoint_url="http://127.0.0.1:9", spool_dir=tmp_path)
        with pytest.raises(StoreError) as caught:
            await store.put_bytes("k", b"x", "text/plain")
        await store.close()
    assert not isinstance(caught.value, ObjectNotFound)


def test_stored_object_contract() -> None:
    StoredObject(uri="file:///x", sha256="0" * 64, size_bytes=0, content_type="application/json")
