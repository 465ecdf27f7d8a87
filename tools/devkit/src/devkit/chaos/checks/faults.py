"""The worker-core and reconciliation faults' side of the ledger (faults/workers.py, store.py, lost.py, slow.py):
each fault happened, and what it did to the recordings it touched. The outcome checks (every recording ended
exactly once, as planned) hold for all of them; these say the faults were really there."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from devkit.chaos.faults.lost import RECORDING_EVENTS, TRANSCRIPT_EVENTS
from devkit.chaos.faults.slow import PROCESSING_SECONDS
from devkit.chaos.faults.workers import WORKERS
from devkit.chaos.ledger import Ledger, sample

if TYPE_CHECKING:
    from devkit.chaos.harness import Chaos

#: What the workers' supervisor logs (pipeline_common.worker.supervisor) and the fault hook raises.
LOG_MARKS = {
    "injected": "injected fault at",
    "parked": "event parked for a retry",
    "parked_handled": "parked events handled",
    "given_up": "recording given up after internal errors",
    "store_not_a_directory": "Not a directory",
}


def log_counts(chaos: Chaos) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for name in WORKERS:
        # every replica's log: <name>.log, and <name>-2.log ... in the distributed mode (--replicas, scale-fetcher)
        paths = [chaos.profile.logs / f"{name}.log", *sorted(chaos.profile.logs.glob(f"{name}-*.log"))]
        text = "".join(path.read_text(errors="replace") for path in paths if path.exists())
        counts[name] = {mark: text.count(needle) for mark, needle in LOG_MARKS.items()}
    return counts


def check_fault_kinds(chaos: Chaos, ledger: Ledger, deliveries: list[dict[str, Any]]) -> None:
    options = chaos.options
    for event in chaos.events:
        if event.until is None and event.kind in ("worker-exceptions", "lost-webhooks", "slow-transcripts"):
            event.until = chaos.now()  # on for the whole run
    counts = log_counts(chaos)
    ledger.sections["worker_faults"] = counts
    if options.worker_exceptions:
        injected = sum(c["injected"] for c in counts.values())
        parked = sum(c["parked"] for c in counts.values())
        given_up = sum(c["given_up"] for c in counts.values())
        ledger.check(
            "worker exceptions: injected in both workers, every one parked and handled again",
            all(c["injected"] > 0 for c in counts.values()) and not given_up,
            ", ".join(f"{name}: {c['injected']} injected, {c['parked']} parked" for name, c in counts.items())
            + f"; {injected} injected, {parked} parked in all, {given_up} recordings given up",
        )
    if options.store_outage:
        outages = [event for event in chaos.events if event.kind == "store-outage"]
        failed_writes = counts["fetcher"]["store_not_a_directory"]
        ledger.check(
            "store outage: the fetcher's writes failed for a while and were retried",
            bool(outages),
            f"{len(outages)} outage(s); {failed_writes} fetcher log lines with 'Not a directory'",
        )
    if options.lost_webhooks:
        states: Counter[str] = Counter()
        for delivery in deliveries:
            if delivery.get("recording_id") in chaos.lost and delivery["state"] == "lost":
                states[delivery["event"]] += 1
        final = chaos.final.planned
        per_kind: dict[str, dict[str, int]] = {}
        not_ended: list[str] = []
        for events, label in ((TRANSCRIPT_EVENTS, "transcript"), (RECORDING_EVENTS, "recording.done")):
            ids = [rid for rid, lost in chaos.lost.items() if lost == events]
            once = [rid for rid in ids if final[rid].ready_events + final[rid].failed_events == 1]
            not_ended += [rid for rid in ids if rid not in once]
            per_kind[label] = {"recordings": len(ids), "ended_exactly_once": len(once)}
        runs = chaos.reconcile_runs
        ledger.sections["lost_webhooks"] = {
            "by_kind": per_kind,
            "deliveries_lost": dict(states),
            "reconcile_runs": len(runs),
            "reconcile_exits": dict(Counter(str(run.get("exit")) for run in runs)),
            "reconcile_sample": sample(runs, 5),
            "not_ended_sample": sample(not_ended),
        }
        ledger.check(
            "lost webhooks: every recording whose webhook was never delivered ended exactly once",
            not not_ended and sum(states.values()) > 0,
            f"{per_kind}; deliveries recorded lost {dict(states)}; reconcile ran {len(runs)} times",
        )
    if options.slow_transcripts:
        final = chaos.final.planned
        waited = [rid for rid in chaos.slow if final[rid].ready_events == 1 and not final[rid].failed_events]
        ledger.check(
            f"slow transcripts (processing {PROCESSING_SECONDS:.0f}s at Recall): waited for past the deadline",
            len(waited) == len(chaos.slow),
            f"{len(waited)}/{len(chaos.slow)} ready exactly once"
            + (f"; not: {sample(set(chaos.slow) - set(waited), 3)}" if len(waited) != len(chaos.slow) else ""),
        )
