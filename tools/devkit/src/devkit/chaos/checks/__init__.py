"""The reconciliation: read every topic the pipeline wrote and Recall's records (the simulator), then check each
side of the ledger (:mod:`.outcomes`, :mod:`.store`, :mod:`.recall`), with a trail (:mod:`.trails`) for every
recording that did not end as it should."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, Any

import httpx

from devkit.chaos.checks.faults import check_fault_kinds
from devkit.chaos.checks.outcomes import check_outcomes, expected
from devkit.chaos.checks.recall import check_creates, check_webhooks
from devkit.chaos.checks.store import check_store
from devkit.chaos.checks.trails import trails
from devkit.chaos.ledger import Ledger
from devkit.chaos.options import DLQS, INGEST_TOPICS
from devkit.kafka import Record, read_topics
from pipeline_common.topics import TRANSCRIPTS_FAILED, TRANSCRIPTS_READY

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


async def reconcile(chaos: Chaos, ledger: Ledger, sim: httpx.AsyncClient, drained: dict[str, Any], at: float) -> None:
    bootstrap = chaos.profile.bootstrap
    records = await read_topics(bootstrap, [*INGEST_TOPICS, TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name, *DLQS])
    by_topic: dict[str, list[Record]] = defaultdict(list)
    for record in records:
        by_topic[record.topic].append(record)
    deliveries, transcripts = await chaos.recall_state(sim)
    create_calls = (await sim.get("/admin/calls", params={"endpoint": "create_transcript"}, timeout=60)).json()

    check_outcomes(chaos, ledger, by_topic)
    await check_store(chaos, ledger, by_topic, transcripts)
    check_creates(chaos, ledger, transcripts, create_calls)
    check_webhooks(chaos, ledger, deliveries, by_topic)
    check_fault_kinds(chaos, ledger, deliveries)
    odd = [
        item.recording_id
        for item in chaos.final.planned.values()
        if item.ready_events + item.failed_events != 1 or expected(chaos, item)
    ]
    if odd:
        ledger.sections["trails"] = await trails(chaos, odd[:10], deliveries, transcripts, records)
    dlq = {topic: len(by_topic[topic]) for topic in DLQS}
    ledger.check("dead-letter queues empty", not any(dlq.values()), json.dumps(dlq))
    lag = drained.get("lag") or {}
    ledger.check(
        "drained: consumers caught up, Recall has nothing pending",
        bool(drained.get("quiescent")),
        json.dumps(drained),
    )
    finished = [item.finished_at for item in chaos.live.planned.values() if item.finished_at is not None]
    last_outcome = (max(finished) - chaos.started) if finished else None
    latencies = sorted(
        item.finished_at - item.created_at for item in chaos.live.planned.values() if item.finished_at is not None
    )
    assert chaos.faults_over_at is not None
    ledger.sections["timing"] = {
        "feed_seconds": round(chaos.options.feed, 1),
        "recordings_created_by_s": round(chaos.fed_at, 1) if chaos.fed_at is not None else None,
        "last_fault_over_at_s": round(chaos.faults_over_at, 1),
        "last_outcome_at_s": round(last_outcome, 1) if last_outcome is not None else None,
        "drained_at_s": round(at, 1),
        "drain_after_last_fault_s": round(max(0.0, (last_outcome or 0) - chaos.faults_over_at), 1),
        "quiescent_after_last_fault_s": round(at - chaos.faults_over_at, 1),
        "latency_s": {
            "p50": round(statistics.median(latencies), 2) if latencies else None,
            "p99": round(latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))], 2)
            if latencies
            else None,
            "max": round(latencies[-1], 2) if latencies else None,
        },
        "lag_at_end": lag,
    }
    ledger.sections["faults"] = [event.to_json() for event in sorted(chaos.events, key=lambda e: e.at)]
