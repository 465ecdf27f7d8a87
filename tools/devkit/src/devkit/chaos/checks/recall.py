"""Recall's side of the ledger: creates per recording within the chain and Recall's limit, no attempt paid twice;
every webhook delivered with a 2xx on its topic (same bytes), none lost."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from devkit.chaos.ledger import Ledger, sample
from devkit.chaos.options import CHAIN, INGEST_TOPICS, RECALL_LIMIT, RECALL_TOPICS
from devkit.kafka import Record
from pipeline_common.topics import OTHER_EVENTS

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


def check_creates(chaos: Chaos, ledger: Ledger, transcripts: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
    limit = min(len(CHAIN), RECALL_LIMIT)
    per_recording: Counter[str] = Counter()
    per_key: Counter[tuple[str, str]] = Counter()
    without_key: list[str] = []
    unknown = 0
    for transcript in transcripts:
        recording_id = transcript["recording"]["id"]
        if recording_id not in chaos.live.planned:
            unknown += 1
        per_recording[recording_id] += 1
        key = transcript.get("idempotency_key")
        if key is None:
            without_key.append(transcript["id"])
        else:
            per_key[(recording_id, key)] += 1
    over = {rid: n for rid, n in per_recording.items() if n > limit}
    paid_twice = {f"{rid} {key}": n for (rid, key), n in per_key.items() if n > 1}
    outcomes = Counter(call["outcome"] for call in calls)
    keys_per_recording = Counter(rid for rid, _ in per_key)
    ledger.sections["creates"] = {
        "transcripts_at_recall": len(transcripts),
        "chain_length": len(CHAIN),
        "max_per_recording": max(per_recording.values(), default=0),
        "recordings_by_transcript_count": dict(sorted(Counter(per_recording.values()).items())),
        "create_calls": len(calls),
        "create_call_outcomes": dict(outcomes),
        "over_limit": len(over),
        "paid_twice": len(paid_twice),
        "without_idempotency_key": len(without_key),
        "for_unknown_recordings": unknown,
        "over_limit_sample": dict(sample(over.items())),
        "paid_twice_sample": dict(sample(paid_twice.items())),
    }
    ledger.check(
        f"creates per recording <= chain length ({len(CHAIN)}) and <= {RECALL_LIMIT}",
        not over,
        f"max {max(per_recording.values(), default=0)} per recording over {len(per_recording)} recordings"
        + (f"; over: {dict(sample(over.items(), 3))}" if over else ""),
    )
    ledger.check(
        "no attempt paid twice (one transcript per recording and Idempotency-Key)",
        not paid_twice and not without_key,
        f"{len(transcripts)} transcripts, {len(per_key)} keys, {max(keys_per_recording.values(), default=0)} "
        f"keys max per recording, {len(calls)} create calls {dict(outcomes)}"
        + (f"; paid twice: {dict(sample(paid_twice.items(), 3))}" if paid_twice else "")
        + (f"; without a key: {len(without_key)}" if without_key else ""),
    )


def check_webhooks(
    chaos: Chaos, ledger: Ledger, deliveries: list[dict[str, Any]], by_topic: dict[str, list[Record]]
) -> None:
    on_kafka: dict[str, list[Record]] = defaultdict(list)
    for topic in INGEST_TOPICS:
        for record in by_topic[topic]:
            on_kafka[record.ce_id or ""].append(record)
    states: Counter[str] = Counter()
    attempt_results: Counter[str] = Counter()
    missing: list[str] = []
    wrong_topic: list[str] = []
    altered: list[str] = []
    not_brought_in: list[str] = []
    first_try = recovered = duplicates_sent = held_back = 0
    known = set()
    for delivery in deliveries:
        known.add(delivery["id"])
        states[delivery["state"]] += 1
        held_back += bool(delivery.get("held_back"))
        attempts = delivery["attempts"]
        for attempt in attempts:
            result = str(attempt["status"]) if attempt["status"] is not None else (attempt["error"] or "error")
            attempt_results[result] += 1
            duplicates_sent += bool(attempt.get("duplicate"))
        delivered = [a for a in attempts if a["status"] is not None and 200 <= a["status"] < 300]
        original = [a for a in attempts if not a.get("duplicate")]
        if original and original[0]["status"] is not None and 200 <= original[0]["status"] < 300:
            first_try += 1
        elif delivered:
            recovered += 1
        if delivery["state"] == "lost" and delivery["event"] in chaos.lost.get(delivery.get("recording_id") or "", ()):
            pass  # lost on purpose (faults/lost.py): the sweep or the reconciler ends its recording
        elif delivery["state"] != "delivered":
            not_brought_in.append(f"{delivery['id']} {delivery['event']} {delivery['state']}")
        if not delivered:
            continue
        family = delivery["event"].split(".", 1)[0]
        expected_topic = RECALL_TOPICS.get(family, OTHER_EVENTS.name)
        found = on_kafka.get(delivery["id"], [])
        if not found:
            missing.append(f"{delivery['id']} {delivery['event']} {delivery.get('recording_id')}")
            continue
        if any(record.topic != expected_topic for record in found):
            wrong_topic.append(delivery["id"])
        body = json.dumps(delivery["body"], separators=(",", ":"), ensure_ascii=False).encode()
        if any(record.value != body for record in found):
            altered.append(delivery["id"])
    chaos.delivery_ids = known
    # The pipeline's own events for webhooks that never came (faults/lost.py), with deterministic ids: the
    # reconciler CLI's ``reconciler-<uuid5>`` and the transcriber's deadline sweep's ``reconciled:<transcript>:<code>``.
    reconciler = {ce_id: len(records) for ce_id, records in on_kafka.items() if ce_id.startswith("reconciler-")}
    swept = {ce_id: len(records) for ce_id, records in on_kafka.items() if ce_id.startswith("reconciled:")}
    unknown = {
        ce_id: len(records)
        for ce_id, records in on_kafka.items()
        if ce_id not in known and ce_id not in reconciler and ce_id not in swept
    }
    written_twice = sum(1 for ce_id, records in on_kafka.items() if ce_id in known and len(records) > 1)
    ledger.sections["webhooks"] = {
        "deliveries": len(deliveries),
        "states": dict(states),
        "attempt_results": dict(attempt_results),
        "delivered_first_try": first_try,
        "delivered_after_non_2xx": recovered,
        "duplicate_deliveries_sent": duplicates_sent,
        "held_back_out_of_order": held_back,
        "kafka_messages": sum(len(r) for r in on_kafka.values()),
        "written_to_kafka_more_than_once": written_twice,
        "missing_from_kafka": len(missing),
        "on_wrong_topic": len(wrong_topic),
        "bytes_differ": len(altered),
        "not_brought_in": len(not_brought_in),
        "unknown_ce_ids_on_kafka": len(unknown),
        "lost_on_purpose": states.get("lost", 0),
        "reconciler_events_on_kafka": sum(reconciler.values()),
        "transcriber_sweep_events_on_kafka": sum(swept.values()),
        "unknown_ce_ids_sample": sample(unknown),
        "missing_sample": sample(missing),
        "not_brought_in_sample": sample(not_brought_in),
    }
    ledger.check(
        "every webhook delivered with a 2xx is on its topic (by ce_id, same bytes)",
        not missing and not wrong_topic and not altered and not unknown,
        f"{len(deliveries) - len(not_brought_in)} delivered, {len(missing)} missing, {len(wrong_topic)} on a "
        f"wrong topic, {len(altered)} altered, {len(unknown)} unknown ids on Kafka; "
        f"{written_twice} written twice (allowed); {sum(reconciler.values())} from the reconciler, "
        f"{sum(swept.values())} from the transcriber's deadline sweep",
    )
    ledger.check(
        "no webhook with a non-2xx answer was lost (Recall's retries brought it in)",
        not not_brought_in,
        f"{recovered} recovered by Recall's retries after non-2xx answers; final states {dict(states)}"
        + (f"; not brought in: {not_brought_in[:3]}" if not_brought_in else ""),
    )
