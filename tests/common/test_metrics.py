"""The scrape-time collector over a worker's Table, and the operator-problem kinds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fetcher.metrics import FetcherMetrics
from ingest.metrics import IngestMetrics, event_type_label
from pipeline_common.metrics import Tracked, WorkStateCollector, operator_problem_kind, parse_time
from tests.support.prometheus import convention_problems, promtool_lint
from transcriber.metrics import TranscriberMetrics

pytestmark = pytest.mark.unit

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def collector(items: list[Tracked], deadline: float = 600) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(
        WorkStateCollector(
            prefix="worker",
            noun="thing",
            states=["busy", "waiting", "done"],
            terminal=["done"],
            snapshot=lambda: items,
            deadline_seconds=deadline,
            clock=lambda: NOW,
        )
    )
    return registry


def test_counts_every_state_ages_the_oldest_unfinished_item_and_counts_those_past_deadline() -> None:
    items = [
        Tracked("busy", NOW - timedelta(seconds=100)),
        Tracked("waiting", NOW - timedelta(seconds=900)),
        Tracked("busy", NOW - timedelta(seconds=700)),
        Tracked("done", NOW - timedelta(days=3)),  # finished: neither oldest nor late, however old
    ]
    found = samples(collector(items))
    assert found[("worker_things", (("state", "busy"),))] == 2
    assert found[("worker_things", (("state", "waiting"),))] == 1
    assert found[("worker_things", (("state", "done"),))] == 1
    assert found[("worker_oldest_unfinished_thing_age_seconds", ())] == 900
    assert found[("worker_things_past_deadline", ())] == 2
    assert found[("worker_thing_deadline_seconds", ())] == 600


def test_an_empty_table_reports_zeros_for_every_state() -> None:
    found = samples(collector([]))
    assert [found[("worker_things", (("state", s),))] for s in ("busy", "waiting", "done")] == [0, 0, 0]
    assert found[("worker_oldest_unfinished_thing_age_seconds", ())] == 0
    assert found[("worker_things_past_deadline", ())] == 0


def test_a_failing_snapshot_does_not_fail_the_scrape() -> None:
    def broken() -> list[Tracked]:
        raise RuntimeError("table not ready")

    registry = CollectorRegistry()
    registry.register(
        WorkStateCollector(
            prefix="w", noun="x", states=["a"], terminal=[], snapshot=broken, deadline_seconds=60, clock=lambda: NOW
        )
    )
    found = samples(registry)
    assert found == {("w_x_deadline_seconds", ()): 60}


def test_the_transcriber_reads_its_table_json_as_stored() -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    recent = datetime.now(UTC).isoformat()
    table: list[tuple[str, Any]] = [
        ("r1", {"status": "transcribing", "created_at": old}),
        ("r2", {"status": "blocked", "created_at": recent}),
        ("r3", {"status": "done", "created_at": old}),
        ("r4", {"status": "failed", "created_at": old}),
    ]
    metrics = TranscriberMetrics()
    metrics.watch_table(lambda: table, deadline_seconds=3600)
    found = samples(metrics.registry)
    assert found[("transcriber_recordings", (("state", "transcribing"),))] == 1
    assert found[("transcriber_recordings", (("state", "blocked"),))] == 1
    assert found[("transcriber_recordings", (("state", "retry_scheduled"),))] == 0
    assert found[("transcriber_recordings_past_deadline", ())] == 1
    assert 7100 < found[("transcriber_oldest_unfinished_recording_age_seconds", ())] < 7300


def test_the_fetcher_counts_transcripts_inside_each_recording() -> None:
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    table: list[tuple[str, Any]] = [
        (
            "r1",
            {
                "recording_id": "r1",
                "transcripts": {
                    "t1": {"status": "ready", "first_seen_at": old},
                    "t2": {"status": "retry_scheduled", "first_seen_at": old},
                },
            },
        ),
        ("r2", {"recording_id": "r2", "transcripts": {"t3": {"status": "fetching", "first_seen_at": old}}}),
    ]
    metrics = FetcherMetrics()
    metrics.watch_table(lambda: table, deadline_seconds=3600)
    found = samples(metrics.registry)
    assert found[("fetcher_transcripts", (("state", "ready"),))] == 1
    assert found[("fetcher_transcripts", (("state", "retry_scheduled"),))] == 1
    assert found[("fetcher_transcripts", (("state", "fetching"),))] == 1
    assert found[("fetcher_transcripts_past_deadline", ())] == 2


@pytest.mark.parametrize(
    ("status", "kind"), [(401, "unauthorized"), (402, "payment_required"), (403, "forbidden"), (None, "other")]
)
def test_operator_problem_kinds_are_bounded(status: int | None, kind: str) -> None:
    assert operator_problem_kind(status) == kind
    metrics = TranscriberMetrics()
    metrics.operator_problem(status)
    assert samples(metrics.registry)[("transcriber_operator_problems_total", (("kind", kind),))] == 1


def test_parse_time_accepts_stored_forms_and_refuses_garbage() -> None:
    assert parse_time("2026-12-01T12:00:00+00:00") == NOW
    assert parse_time("2026-12-01T12:00:00") == NOW  # naive: taken as UTC
    assert parse_time(NOW) == NOW
    assert parse_time("yesterday") is None
    assert parse_time(None) is None


@pytest.mark.parametrize("service", ["ingest", "transcriber", "fetcher"])
def test_each_services_metrics_follow_prometheus_conventions(service: str) -> None:
    """Every family a service can expose, with a sample in each labelled one, through promtool's lint and ours."""
    registry = _populated_registry(service)
    exposition = generate_latest(registry).decode()
    assert convention_problems(exposition, (f"{service}_",)) == []
    assert promtool_lint(exposition) == ""


def test_the_convention_check_catches_what_breaks_them() -> None:
    exposition = "\n".join(
        [
            "# HELP ingest_latency_ms Latency",
            "# TYPE ingest_latency_ms gauge",
            "ingest_latency_ms 1",
            "# HELP ingest_items_total Items",
            "# TYPE ingest_items_total gauge",
            "ingest_items_total 1",
            "# HELP fetcher_things Things",
            "# TYPE fetcher_things gauge",
            'ingest_things{recording_id="3f1c9a2e-1b2c-4d5e-8f90-123456789abc"} 1',
            "",
        ]
    )
    problems = "\n".join(convention_problems(exposition, ("ingest_",)))
    assert "ingest_latency_ms: not in base units" in problems
    assert "ingest_items_total: a gauge named like a counter" in problems
    assert "looks like an id" in problems
    assert promtool_lint(exposition) != ""


def _populated_registry(service: str) -> CollectorRegistry:
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    if service == "ingest":
        ingest = IngestMetrics()
        ingest.requests.labels(outcome="accepted").inc()
        ingest.responses.labels(code="200").inc()
        ingest.events.labels(event_type=event_type_label("bot.joining_call")).inc()
        ingest.verification_failures.labels(reason="bad_signature").inc()
        ingest.produce_latency.observe(0.01)
        ingest.body_size.observe(1000)
        return ingest.registry
    if service == "transcriber":
        transcriber = TranscriberMetrics()
        transcriber.watch_table(lambda: [("r", {"status": "transcribing", "created_at": old})], 3600)
        transcriber.events.labels(event_type="recording.done").inc()
        transcriber.creates.labels(provider="recallai_async", outcome="created").inc()
        transcriber.recall_calls.labels(operation="create_transcript", outcome="ok").inc()
        transcriber.terminal_failures.labels(reason="all_providers_failed").inc()
        transcriber.recall_latency.labels(operation="create_transcript").observe(0.1)
        transcriber.operator_problem(401)
        return transcriber.registry
    fetcher = FetcherMetrics()
    fetcher.watch_table(lambda: [], 3600)
    fetcher.events.labels(event_type="transcript.done").inc()
    fetcher.downloads.labels(outcome="ok").inc()
    fetcher.duplicates.labels(via="table").inc()
    fetcher.retries.labels(kind="retryable").inc()
    fetcher.recall_calls.labels(operation="retrieve_transcript", outcome="ok").inc()
    fetcher.recall_latency.labels(operation="retrieve_transcript").observe(0.1)
    fetcher.stored_bytes.labels(object="raw").inc(100)
    fetcher.operator_problem(403)
    return fetcher.registry
