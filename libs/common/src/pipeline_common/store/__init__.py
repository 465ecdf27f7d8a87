"""The transcript store: one interface, two backends chosen by ``TRANSCRIPT_STORE_URL``
(docs/architecture.md, "Configuration").

- ``file:///var/lib/transcripts``: a directory. Every object is written to a staging file, fsynced, renamed into
  place and its directory fsynced, so a reader (or a crash) never sees half an object.
- ``s3://bucket/prefix``: any S3-compatible server (AWS, MinIO, moto, ...). A PUT, single or multipart, is atomic.
  The endpoint comes from ``TRANSCRIPT_STORE_S3_ENDPOINT_URL`` or boto3's own ``AWS_ENDPOINT_URL``; credentials from
  boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, web identity, instance role). Needs the
  ``s3`` extra (``pipeline-common[s3]``).

The package: ``base`` (the interface and its errors), ``file`` and ``s3`` (the backends), ``factory``
(:func:`open_store`), ``layout`` (the keys and the one table of renditions), ``manifest`` (the commit point).

A transcript is *complete* when its manifest exists: the manifest is written only after every object it lists, so
readers trust the manifest and nothing else. Writing the same transcript again writes the same bytes to the same keys
(idempotent); a manifest, once written, is never replaced.
"""

from __future__ import annotations

from pipeline_common.store.base import (
    CHUNK_BYTES,
    MANIFEST_MAX_BYTES,
    STAGING_DIR,
    LocalObject,
    ObjectInfo,
    TranscriptStore,
    check_id,
    sha256_file,
)
from pipeline_common.store.errors import ObjectNotFound, StoreError, StoreUnavailable
from pipeline_common.store.factory import open_store
from pipeline_common.store.file import FileStore
from pipeline_common.store.layout import RENDITIONS, Rendition, TranscriptKeys, format_names, rendition_for_format
from pipeline_common.store.manifest import Announcement, Manifest, find_transcript, read_manifest, write_manifest
from pipeline_common.store.s3 import S3Store

__all__ = [
    "CHUNK_BYTES",
    "MANIFEST_MAX_BYTES",
    "RENDITIONS",
    "STAGING_DIR",
    "Announcement",
    "FileStore",
    "LocalObject",
    "Manifest",
    "ObjectInfo",
    "ObjectNotFound",
    "Rendition",
    "S3Store",
    "StoreError",
    "StoreUnavailable",
    "TranscriptKeys",
    "TranscriptStore",
    "check_id",
    "find_transcript",
    "format_names",
    "open_store",
    "read_manifest",
    "rendition_for_format",
    "sha256_file",
    "write_manifest",
]
