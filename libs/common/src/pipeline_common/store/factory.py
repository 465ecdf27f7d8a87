"""The store ``TRANSCRIPT_STORE_URL`` names."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pipeline_common.store.base import TranscriptStore
from pipeline_common.store.file import FileStore
from pipeline_common.store.s3 import S3Store


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
