"""``make chaos`` in miniature, so CI guards it: 100 recordings through the real processes while each service is
SIGKILLed once, Recall answers 429s/5xx and drops responses, delivers webhooks twice and out of order, and the primary
provider has an outage, both workers raise unforeseen exceptions, the transcript store is unwritable for a few
seconds, some webhooks are never delivered (the deadline sweep and the reconciler end those recordings) and a few
transcripts stay processing past the transcriber's deadline; then the ledger, and a short fuzzing pass on ingest.
The harness runs as a subprocess (it starts its own broker and stack on free ports under var/<unique name>/) and
writes its ledger as JSON; the tests read that ledger."""

from __future__ import annotations

import os

import pytest

from tests.support.chaos import ChaosRun, failed_checks, run_chaos

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDINGS = 100
# Fixed so a failure can be replayed (`python scripts/chaos.py --seed ...`); CHAOS_SEED picks another schedule.
SEED = int(os.environ.get("CHAOS_SEED", "20261121"))
HARNESS_TIMEOUT = 250


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> ChaosRun:
    options = [
        f"--recordings={RECORDINGS}",
        f"--seed={SEED}",
        "--kills=1",
        "--kill-services=ingest,transcriber,fetcher",
        "--no-broker-restart",
        "--fuzz-examples=300",
        "--session-timeout=8",
    ]
    ledger_dir = tmp_path_factory.mktemp("chaos-ledger")
    return run_chaos(ledger_dir, "chaos-test", options, timeout=HARNESS_TIMEOUT, stop_timeout=90)


def test_the_ledger_balances(run: ChaosRun) -> None:
    ledger, output = run
    assert ledger["ok"] and not failed_checks(ledger), output


def test_every_recording_ended_exactly_once(run: ChaosRun) -> None:
    ledger, output = run
    recordings = ledger["recordings"]
    assert recordings["planned"] == RECORDINGS
    assert (recordings["lost"], recordings["duplicated"]) == (0, 0), output
    assert recordings["ready"] + recordings["failed"] == RECORDINGS
    assert recordings["failed"] == recordings["by_kind"]["doomed"], output


def test_no_attempt_was_paid_twice_and_the_chain_was_never_exceeded(run: ChaosRun) -> None:
    ledger, output = run
    creates = ledger["creates"]
    assert (creates["paid_twice"], creates["over_limit"], creates["without_idempotency_key"]) == (0, 0, 0), output
    assert creates["max_per_recording"] <= min(creates["chain_length"], 10)
    # The faults were real: Recall failed or dropped some creates, and the retries replayed with the same key.
    assert {"injected", "dropped"} & set(creates["create_call_outcomes"]), creates


def test_every_delivered_webhook_is_on_kafka_and_none_was_lost(run: ChaosRun) -> None:
    ledger, output = run
    webhooks = ledger["webhooks"]
    assert webhooks["missing_from_kafka"] == webhooks["not_brought_in"] == webhooks["bytes_differ"] == 0, output
    # The lost webhooks were lost (recorded so at Recall), and the pipeline's own events stood in for them.
    assert webhooks["lost_on_purpose"] > 0, webhooks
    assert webhooks["reconciler_events_on_kafka"] > 0 and webhooks["transcriber_sweep_events_on_kafka"] > 0, webhooks
    assert webhooks["unknown_ce_ids_on_kafka"] == webhooks["on_wrong_topic"] == 0, output
    # Recall really did deliver twice and out of order, and did have to retry (a SIGKILLed ingest answers nothing).
    assert webhooks["duplicate_deliveries_sent"] > 0 and webhooks["held_back_out_of_order"] > 0, webhooks
    assert webhooks["delivered_after_non_2xx"] > 0, webhooks


def test_every_transcript_is_stored_as_announced(run: ChaosRun) -> None:
    ledger, output = run
    store = ledger["store"]
    assert store["mismatches"] == 0, output
    assert store["ready_events_checked"] == ledger["recordings"]["ready"]


def test_each_service_was_killed_and_came_back(run: ChaosRun) -> None:
    ledger, _ = run
    killed = {fault["target"] for fault in ledger["faults"] if fault["kind"] == "sigkill"}
    assert killed == {"ingest", "transcriber", "fetcher"}
    kinds = {fault["kind"] for fault in ledger["faults"]}
    assert {"webhook-chaos", "api-faults", "provider-outage"} <= kinds
    assert ledger["timing"]["quiescent_after_last_fault_s"] is not None


def test_injected_exceptions_were_parked_and_every_recording_still_ended_once(run: ChaosRun) -> None:
    ledger, output = run
    workers = ledger["worker_faults"]
    assert workers["transcriber"]["injected"] > 0 and workers["fetcher"]["injected"] > 0, workers
    assert workers["transcriber"]["given_up"] == workers["fetcher"]["given_up"] == 0, output
    assert ledger["recordings"]["lost"] == ledger["recordings"]["duplicated"] == 0, output


def test_recordings_whose_webhooks_were_lost_ended_through_the_sweep_and_the_reconciler(
    run: ChaosRun,
) -> None:
    ledger, output = run
    lost = ledger["lost_webhooks"]
    for kind in ("transcript", "recording.done"):
        assert lost["by_kind"][kind]["recordings"] > 0
        assert lost["by_kind"][kind]["ended_exactly_once"] == lost["by_kind"][kind]["recordings"], output
    assert lost["reconcile_runs"] > 0
    kinds = {fault["kind"] for fault in ledger["faults"]}
    assert {"worker-exceptions", "lost-webhooks", "store-outage", "slow-transcripts"} <= kinds


def test_fuzzing_wrote_nothing_unverified(run: ChaosRun) -> None:
    ledger, output = run
    fuzz = ledger["fuzz"]
    assert fuzz["problems"] == [], output
    assert fuzz["requests"] >= 100
    assert fuzz["written"] == fuzz["accepted"]
    assert not [status for status in fuzz["statuses"] if status.startswith("5") and status != "503"]
