"""Every recording ended exactly once, as planned (from ``transcripts.ready``/``transcripts.failed``)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import replace
from typing import TYPE_CHECKING

from devkit.chaos.ledger import Ledger, sample
from devkit.chaos.options import CHAIN
from devkit.demo import FALLBACK, PRIMARY, Planned
from devkit.kafka import Record
from pipeline_common.topics import TRANSCRIPTS_FAILED, TRANSCRIPTS_READY

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos


def check_outcomes(chaos: Chaos, ledger: Ledger, by_topic: dict[str, list[Record]]) -> None:
    final = chaos.final
    for item in chaos.live.planned.values():
        final.planned[item.recording_id] = Planned(item.recording_id, item.kind)
    unknown: Counter[str] = Counter()
    ready_ids: dict[str, list[str | None]] = defaultdict(list)
    failed_ids: dict[str, set[str | None]] = defaultdict(set)
    for topic in (TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name):
        for record in by_topic[topic]:
            key = (record.key or b"").decode("utf-8", "replace")
            if key not in final.planned:
                unknown[topic] += 1
                continue
            final.take(topic, record.value)
            ready_ids[key].append(record.ce_id)
            if topic == TRANSCRIPTS_FAILED.name:
                failed_ids[key].add(record.ce_id)
    chaos.final = final
    lost = [item.recording_id for item in final.planned.values() if not item.ready_events + item.failed_events]
    duplicated = {
        item.recording_id: {
            "ready": item.ready_events,
            "failed": item.failed_events,
            "ce_ids": sorted({i or "" for i in ready_ids[item.recording_id]}),
        }
        for item in final.planned.values()
        if item.ready_events + len(failed_ids[item.recording_id]) > 1 or item.ready_events > 1
    }
    # transcripts.failed is sent through the workers' outbox: after a crash between the send and its mark, the same
    # event is sent again with the same ce_id (docs/worker-core.md), which a consumer drops by ce_id. Counted, not a
    # duplicate; transcripts.ready has no such allowance (the fetcher's manifest makes it exactly once).
    failed_resent = sum(
        item.failed_events - len(failed_ids[item.recording_id])
        for item in final.planned.values()
        if item.failed_events > len(failed_ids[item.recording_id]) and item.recording_id not in duplicated
    )
    wrong = {
        item.recording_id: problems
        for item in final.planned.values()
        if item.recording_id not in duplicated
        and item.ready_events + item.failed_events >= 1
        # one announcement, however often the outbox re-sent it
        and (problems := expected(chaos, replace(item, failed_events=min(item.failed_events, 1))))
    }
    ready = sum(1 for item in final.planned.values() if item.ready_events)
    failed = sum(1 for item in final.planned.values() if item.failed_events and not item.ready_events)
    kinds = Counter(item.kind for item in final.planned.values())
    providers = Counter(item.ready.provider for item in final.planned.values() if item.ready is not None)
    ledger.sections["recordings"] = {
        "planned": len(final.planned),
        "by_kind": dict(kinds),
        "ready": ready,
        "failed": failed,
        "lost": len(lost),
        "duplicated": len(duplicated),
        "failed_resent_same_ce_id": failed_resent,
        "ready_by_provider": dict(providers),
        "events_for_unknown_recordings": dict(unknown),
        "lost_sample": sample(lost),
        "duplicated_sample": dict(sample(duplicated.items())),
        "unexpected_outcome_sample": dict(sample(wrong.items())),
    }
    ledger.check(
        "every recording ended exactly once",
        not lost and not duplicated and not unknown,
        f"{len(final.planned)} planned: {ready} ready + {failed} failed; lost {len(lost)}, "
        f"duplicated {len(duplicated)}, events for unknown recordings {sum(unknown.values())}; "
        f"transcripts.failed re-sent with the same ce_id {failed_resent} (allowed)",
    )
    ledger.check(
        "every recording ended as planned",
        not wrong,
        f"{len(wrong)} unexpected"
        + (f": {dict(sample(wrong.items(), 3))}" if wrong else "")
        + f" (kinds {dict(kinds)})",
    )


def expected(chaos: Chaos, item: Planned) -> list[str]:
    """How ``item`` did not end as planned (empty when it did)."""
    # Under the provider outage (or a retry storm), any recording may legitimately end on the fallback.
    allowed = {FALLBACK} if item.kind == "fallback" else {PRIMARY, FALLBACK}
    if not chaos.options.provider_outage and item.kind != "fallback":
        allowed = {PRIMARY}
    return item.problems(allowed, len(CHAIN))
