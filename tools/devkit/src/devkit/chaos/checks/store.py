"""Every ``transcripts.ready`` points at stored objects whose sha256 and size match, and the raw transcript is the
bytes Recall serves."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import httpx

from devkit import stack
from devkit.chaos.ledger import Ledger, sample
from devkit.kafka import Record
from pipeline_common.contracts import TranscriptReady
from pipeline_common.store import TranscriptStore, open_store
from pipeline_common.topics import TRANSCRIPTS_READY

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def check_store(
    chaos: Chaos, ledger: Ledger, by_topic: dict[str, list[Record]], transcripts: list[dict[str, Any]]
) -> None:
    store_url = chaos.processes["fetcher"].env["TRANSCRIPT_STORE_URL"]
    store = open_store(store_url)
    recall = {t["id"]: t for t in transcripts}
    checked = objects = 0
    mismatches: list[str] = []
    try:
        async with httpx.AsyncClient(
            base_url=chaos.sim_url, timeout=30, headers={"Authorization": f"Token {stack.DEV_API_KEY}"}
        ) as api:
            for record in by_topic[TRANSCRIPTS_READY.name]:
                ready = TranscriptReady.model_validate_json(record.value)
                checked += 1
                stored = {"raw": ready.raw, "readable": ready.readable, **ready.renditions}
                if ready.provider_data is not None:
                    stored["provider_data"] = ready.provider_data
                raw_digest = None
                for name, item in stored.items():
                    objects += 1
                    try:
                        data = await store.get_bytes(store_key(store, item.uri))
                    except Exception as error:
                        mismatches.append(f"{ready.recording_id} {name}: unreadable ({type(error).__name__})")
                        continue
                    digest = hashlib.sha256(data).hexdigest()
                    if name == "raw":
                        raw_digest = digest
                    if digest != item.sha256 or len(data) != item.size_bytes:
                        mismatches.append(f"{ready.recording_id} {name}: sha256/size differ from the event")
                at_recall = recall.get(ready.transcript_id)
                if at_recall is None or at_recall["recording"]["id"] != ready.recording_id:
                    mismatches.append(f"{ready.recording_id}: transcript {ready.transcript_id} unknown at Recall")
                    continue
                if at_recall["status"]["code"] != "done":
                    mismatches.append(f"{ready.recording_id}: transcript is {at_recall['status']['code']}")
                served = await recall_bytes(api, ready.transcript_id)
                if served is None or hashlib.sha256(served).hexdigest() != raw_digest:
                    mismatches.append(f"{ready.recording_id}: stored raw transcript is not what Recall serves")
    finally:
        await store.close()
    ledger.sections["store"] = {
        "ready_events_checked": checked,
        "objects_checked": objects,
        "store": store_url,
        "mismatches": len(mismatches),
        "mismatch_sample": sample(mismatches),
    }
    ledger.check(
        "every transcripts.ready points at a stored transcript whose sha256 matches",
        not mismatches,
        f"{checked} events, {objects} objects re-hashed, raw compared with Recall's bytes; "
        f"{len(mismatches)} mismatches" + (f": {mismatches[:3]}" if mismatches else ""),
    )


async def recall_bytes(api: httpx.AsyncClient, transcript_id: str) -> bytes | None:
    """The transcript as Recall serves it now (retrieve for a fresh URL, then download)."""
    response = await api.get(f"/api/v1/transcript/{transcript_id}/")
    if response.status_code != 200:
        return None
    url = response.json()["data"]["download_url"]
    if not url:
        return None
    # Recall's API-host download URLs redirect to storage (the simulator serves both kinds).
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as downloads:
        download = await downloads.get(url)
    return download.content if download.status_code == 200 else None


def store_key(store: TranscriptStore, uri: str) -> str:
    prefix = store.uri("probe")[: -len("probe")]
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not in the store {prefix}")
    return uri[len(prefix) :]
