"""``s3://bucket/prefix``: any S3-compatible server (AWS, MinIO, moto, ...), through boto3 in worker threads. A PUT,
single or multipart, is atomic. Needs the ``s3`` extra (``pipeline-common[s3]``)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from pipeline_common.contracts import StoredObject
from pipeline_common.store.base import CHUNK_BYTES, ObjectInfo, TranscriptStore, check_key, sha256_file
from pipeline_common.store.errors import ObjectNotFound, StoreError, StoreUnavailable


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
        check_key(key)
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
