"""The fetcher's HTTP pages beside the operational ones: a recording's status, and a stored transcript's content."""

from __future__ import annotations

from typing import Any

import faust
from aiohttp import web as aioweb
from faust.types import TableT
from prometheus_client import CollectorRegistry

from fetcher.state import RecordingDoc
from pipeline_common.logging import get_logger
from pipeline_common.store import (
    StoreError,
    TranscriptStore,
    find_transcript,
    format_names,
    read_manifest,
    rendition_for_format,
)
from pipeline_common.streaming import add_operational_pages

_log = get_logger("fetcher.pages")


def add_pages(
    app: faust.App, recordings: TableT[str, Any], store: TranscriptStore, registry: CollectorRegistry
) -> None:
    add_operational_pages(app, registry, ready_gauge="fetcher_worker_ready")

    @app.page("/recordings/{recording_id}")
    @app.table_route(table=recordings, match_info="recording_id")
    async def recording_status(web: Any, request: Any, recording_id: str) -> Any:
        value = recordings.get(recording_id)
        if value is None:
            return web.json({"error": "not_found", "recording_id": recording_id}, status=404)
        public = RecordingDoc.from_table(recording_id, value).public()
        supervision = value.get("supervision")
        if supervision:  # events parked after unforeseen errors: what an operator looks for first (not their bodies)
            public["supervision"] = {
                "parked": len(supervision.get("parked") or []),
                **{name: supervision.get(name) for name in ("failures", "last_error", "due_at", "first_failed_at")},
            }
        return web.json(public)

    @app.page("/transcripts/{transcript_id}")
    async def transcript_content(web: Any, request: Any, transcript_id: str) -> Any:
        wanted = request.query.get("format", "json")
        rendition = rendition_for_format(wanted)
        if rendition is None:
            return web.json({"error": "bad_format", "formats": format_names()}, status=400)
        try:
            keys = await find_transcript(store, transcript_id)
            manifest = await read_manifest(store, keys) if keys is not None else None
        except ValueError:
            return web.json({"error": "not_found", "transcript_id": transcript_id[:128]}, status=404)
        except StoreError as error:
            _log.warning("store unavailable for a read", error=str(error))
            return web.json({"error": "store_unavailable"}, status=503)
        if keys is None or manifest is None:
            return web.json({"error": "not_found", "transcript_id": transcript_id}, status=404)
        stored = manifest.object(rendition.name)
        if stored is None:
            return web.json({"error": "not_stored", "format": wanted}, status=404)
        response = aioweb.StreamResponse(
            headers={
                "Content-Type": stored.content_type,
                "Content-Length": str(stored.size_bytes),
                "ETag": f'"{stored.sha256}"',
                "X-Transcript-Uri": stored.uri,
            }
        )
        await response.prepare(request)
        async for chunk in store.iter_bytes(keys.key(rendition.filename)):
            await response.write(chunk)
        await response.write_eof()
        return response
