"""The real processes end to end: Kafka, the simulator, ingest, transcriber and fetcher as separate processes, started
by the same supervisor as ``make up`` and driven by the same code as ``make demo``."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from deploy import kustomize
from devkit import demo, stack
from tests.support.broker import ROOT
from tests.support.prometheus import convention_problems, promtool_lint, running_prometheus
from tests.support.waiting import wait_for_sync

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RECORDINGS = 10
# Recall delivers at least once and in no particular order: make the simulator do both, often.
WEBHOOK_CHAOS = '{"webhooks": {"duplicate_rate": 0.5, "out_of_order_rate": 0.3, "out_of_order_delay_seconds": 0.5}}'


@pytest.fixture(scope="module")
def finished() -> Iterator[tuple[stack.Profile, demo.Demo]]:
    profile = stack.ephemeral_profile("e2e")
    shutil.rmtree(profile.home, ignore_errors=True)
    run = demo.Demo(profile)
    run.plan(RECORDINGS)
    with stack.running(
        profile, sim_env={"RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.3", "RECALL_SIM_FAULTS": WEBHOOK_CHAOS}
    ):
        asyncio.run(run.collect(180))
        yield profile, run


def test_every_recording_ends_as_the_mix_says(finished: tuple[stack.Profile, demo.Demo]) -> None:
    _, run = finished
    outcomes = {item.recording_id: (item.kind, item.problems()) for item in run.planned.values()}
    assert all(not problems for _, problems in outcomes.values()), outcomes
    kinds = sorted(item.kind for item in run.planned.values())
    assert kinds.count("doomed") == 1 and kinds.count("empty") == 1 and kinds.count("fallback") == 2


def test_duplicate_and_out_of_order_deliveries_change_nothing(finished: tuple[stack.Profile, demo.Demo]) -> None:
    _, run = finished
    # One transcripts.ready per recording (or one transcripts.failed), however often Recall delivered.
    assert {rid: n for rid, n in run.ready_counts.items() if n > 1} == {}
    assert {rid: n for rid, n in run.failed_counts.items() if n > 1} == {}
    assert sum(run.ready_counts.values()) == RECORDINGS - 1
    assert sum(run.failed_counts.values()) == 1


def test_the_example_consumer_receives_every_transcripts_ready(finished: tuple[stack.Profile, demo.Demo]) -> None:
    profile, run = finished
    ready_ids = {item.recording_id for item in run.planned.values() if item.ready is not None}
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "consume_transcripts.py"),
            "--from-beginning",
            "--max-events",
            str(RECORDINGS),
            "--timeout",
            "60",
        ],
        env={"KAFKA_BOOTSTRAP_SERVERS": profile.bootstrap, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert all(recording_id in result.stdout for recording_id in ready_ids), result.stdout


def scrape(profile: stack.Profile, service: str) -> str:
    port = {"ingest": profile.ingest_port, "transcriber": profile.transcriber_port, "fetcher": profile.fetcher_port}
    response = httpx.get(f"http://127.0.0.1:{port[service]}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def values(exposition: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@pytest.mark.parametrize("service", ["ingest", "transcriber", "fetcher"])
def test_the_processes_metrics_follow_prometheus_conventions(
    finished: tuple[stack.Profile, demo.Demo], service: str
) -> None:
    exposition = scrape(finished[0], service)
    assert convention_problems(exposition, (f"{service}_",)) == []
    assert promtool_lint(exposition) == ""


def test_the_processes_metrics_tell_what_the_run_did(finished: tuple[stack.Profile, demo.Demo]) -> None:
    profile, _ = finished
    ingest, transcriber, fetcher = (values(scrape(profile, s)) for s in ("ingest", "transcriber", "fetcher"))

    def one(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
        return found[(name, frozenset(labels.items()))]

    assert one(ingest, "ingest_webhook_events_total", event_type="recording.done") >= RECORDINGS
    assert one(ingest, "ingest_webhook_responses_total", code="200") >= RECORDINGS
    assert one(ingest, "ingest_kafka_ready") == 1
    assert one(transcriber, "transcriber_recordings", state="done") == RECORDINGS - 1
    assert one(transcriber, "transcriber_recordings", state="failed") == 1
    assert one(transcriber, "transcriber_recordings_past_deadline") == 0
    assert one(transcriber, "transcriber_oldest_unfinished_recording_age_seconds") == 0
    assert one(transcriber, "transcriber_recall_calls_total", operation="create_transcript", outcome="ok") >= RECORDINGS
    assert one(transcriber, "transcriber_worker_ready") == 1
    assert one(fetcher, "fetcher_transcripts", state="ready") == RECORDINGS - 1
    assert one(fetcher, "fetcher_stored_bytes_total", object="raw") > 0
    assert one(fetcher, "fetcher_worker_ready") == 1


def test_the_alert_rules_judge_the_real_processes_metrics(
    finished: tuple[stack.Profile, demo.Demo], tmp_path: Path
) -> None:
    """A real Prometheus scrapes the three processes and evaluates the rendered rules: each rule evaluates without an
    error and none is pending on a healthy run. Then Recall refuses the key (402), and RecallCredentialsRefused
    becomes pending from the processes' own metrics (its `for:` is promtool's to test)."""
    profile, _ = finished
    objects = kustomize.render_overlay("prod", kustomize.ensure_renderer())
    rules = next(obj for obj in objects if obj["kind"] == "PrometheusRule")["spec"]
    targets = {"ingest": profile.ingest_port, "transcriber": profile.transcriber_port, "fetcher": profile.fetcher_port}
    simulator = f"http://127.0.0.1:{profile.sim_port}"
    with running_prometheus(targets, rules, tmp_path) as prometheus:

        def all_up() -> bool:
            result = prometheus.get("/api/v1/query", params={"query": "sum(up)"}).json()["data"]["result"]
            return bool(result) and result[0]["value"][1] == str(len(targets))

        wait_for_sync(all_up, timeout=60, message="Prometheus scraping the three processes")
        scraped_at = datetime.now(UTC)

        def evaluated_since_scraped() -> list[dict[str, Any]] | None:
            evaluated = prometheus.get("/api/v1/rules").json()["data"]["groups"][0]["rules"]
            fresh = all(
                datetime.fromisoformat(rule["lastEvaluation"][:19]).replace(tzinfo=UTC) > scraped_at
                for rule in evaluated
            )
            return evaluated if fresh else None

        evaluated = wait_for_sync(evaluated_since_scraped, timeout=60, message="rules evaluated on scraped data")
        assert len(evaluated) == len(rules["groups"][0]["rules"])
        assert [(r["name"], r.get("lastError")) for r in evaluated if r["health"] != "ok"] == []
        assert [r["name"] for r in evaluated if r["state"] != "inactive"] == []

        refuse = {"endpoints": {"create_transcript": {"fail_next": 1000, "status": 402}}}
        assert httpx.put(f"{simulator}/admin/faults", json=refuse).status_code < 300
        try:
            assert httpx.post(f"{simulator}/admin/recordings", json={}).status_code == 201

            def credentials_alert() -> list[dict[str, Any]]:
                alerts = prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
                return [a for a in alerts if a["labels"]["alertname"] == "RecallCredentialsRefused"]

            alert = wait_for_sync(credentials_alert, timeout=90, message="RecallCredentialsRefused pending")
            assert alert[0]["labels"] == {
                "alertname": "RecallCredentialsRefused",
                "namespace": "e2e",
                "severity": "critical",
            }
            alerts = prometheus.get("/api/v1/alerts").json()["data"]["alerts"]
            assert {a["labels"]["alertname"] for a in alerts} == {"RecallCredentialsRefused"}
        finally:
            httpx.delete(f"{simulator}/admin/faults")


def _forbidden_strings() -> dict[str, str]:
    """What must never appear in any log line of any process (issue 14 item 10)."""
    secret = stack.dev_webhook_secret()
    forbidden = {
        "the API key": stack.DEV_API_KEY,
        "the webhook secret": secret,
        "the webhook secret's key": secret.removeprefix("whsec_"),
        "a signed URL's signature": "X-Sim-Signature=",
        "a signed URL's expiry": "X-Sim-Expires=",
        "a download token": "token=",
        "an S3 signature": "X-Amz-Signature=",
        "an S3 credential": "X-Amz-Credential=",
    }
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN"):
        value = os.environ.get(name)
        if value:
            forbidden[name] = value
    return forbidden


def test_every_log_line_of_every_process_is_json_and_carries_no_secret(
    finished: tuple[stack.Profile, demo.Demo],
) -> None:
    # Issue 14 items 10 and 11: faust workers' lines were "[time] [pid] [INFO] {dict repr}"; httpx logged every
    # pre-signed download URL at INFO.
    profile, _ = finished
    forbidden = _forbidden_strings()
    files = {path.stem: path.read_text(errors="replace").splitlines() for path in profile.logs.glob("*.log")}
    assert {"ingest", "transcriber", "fetcher", "recall_sim"} <= set(files), sorted(files)
    problems: list[str] = []
    for name, lines in files.items():
        assert lines, f"{name} logged nothing"
        for number, line in enumerate(lines, 1):
            for what, value in forbidden.items():
                if value in line:
                    problems.append(f"{name}:{number}: {what} in {line[:200]!r}")
            try:
                parsed = json.loads(line)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                problems.append(f"{name}:{number}: not one JSON object: {line[:200]!r}")
    assert problems == [], "\n".join(problems[:40])


def test_redirecting_downloads_and_legacy_bot_events_were_exercised(
    finished: tuple[stack.Profile, demo.Demo],
) -> None:
    # Issue 14 items 2 and 4: the simulator serves both, as Recall does; the pipeline must take both.
    profile, _ = finished
    base = f"http://127.0.0.1:{profile.sim_port}"
    calls = httpx.get(f"{base}/admin/calls", params={"endpoint": "download"}, timeout=10).json()
    redirected = [call for call in calls if call["outcome"] == "redirected"]
    assert redirected, "no download URL redirected"
    assert not [call for call in calls if call["authorization_sent"]]
    deliveries = httpx.get(f"{base}/admin/deliveries", params={"event": "bot.status_change"}, timeout=10).json()
    assert deliveries, "no legacy bot event sent"
    assert all(delivery["delivered_count"] >= 1 for delivery in deliveries), deliveries[:3]
    refused = [a for d in deliveries for a in d["attempts"] if a["status"] is not None and a["status"] >= 400]
    assert refused == []
