"""What both sides know about a recording that did not end as it should: for the investigation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from devkit.chaos.options import GROUPS
from devkit.kafka import Record, committed_offsets

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def trails(
    chaos: Chaos,
    recording_ids: list[str],
    deliveries: list[dict[str, Any]],
    transcripts: list[dict[str, Any]],
    records: list[Record],
) -> dict[str, Any]:
    """Everything both sides know about a recording that did not end as it should: for the investigation."""
    try:
        committed = {group: await committed_offsets(chaos.profile.bootstrap, group) for group in GROUPS}
    except Exception as error:  # a trail is best effort
        committed = {"error": repr(error)}  # type: ignore[dict-item]
    trails: dict[str, Any] = {}
    async with httpx.AsyncClient(timeout=10) as client:
        for recording_id in recording_ids:
            states = {}
            for name, port in (
                ("transcriber", chaos.profile.transcriber_port),
                ("fetcher", chaos.profile.fetcher_port),
            ):
                try:
                    response = await client.get(f"http://127.0.0.1:{port}/recordings/{recording_id}")
                    states[name] = response.json()
                except (httpx.HTTPError, ValueError) as error:
                    states[name] = repr(error)
            trails[recording_id] = {
                "kind": chaos.live.planned[recording_id].kind,
                "recall_deliveries": [
                    {
                        "id": d["id"],
                        "event": d["event"],
                        "state": d["state"],
                        "held_back": d.get("held_back"),
                        "attempts": [(a["status"] or a["error"], a["at"], a.get("duplicate")) for a in d["attempts"]],
                        "transcript_id": d.get("transcript_id"),
                    }
                    for d in deliveries
                    if d.get("recording_id") == recording_id
                ],
                "recall_transcripts": [
                    {
                        "id": t["id"],
                        "provider": next(iter(t["provider"]), None),
                        "status": t["status"],
                        "idempotency_key": t.get("idempotency_key"),
                    }
                    for t in transcripts
                    if t["recording"]["id"] == recording_id
                ],
                "kafka": [
                    {
                        "topic": r.topic,
                        "partition": r.partition,
                        "offset": r.offset,
                        "ce_id": r.ce_id,
                        "committed": {
                            group: offsets.get(f"{r.topic}:{r.partition}")
                            for group, offsets in committed.items()
                            if isinstance(offsets, dict)
                        },
                    }
                    for r in records
                    if (r.key or b"").decode("utf-8", "replace") == recording_id
                ],
                "service_state": states,
            }
    return trails
