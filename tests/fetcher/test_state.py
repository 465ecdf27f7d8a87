"""The fetcher's decisions: which transcript.done needs work, retry scheduling, giving up, stale wake-ups."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from fetcher.announce import partition_for, ready_event_id
from fetcher.settings import FetcherSettings
from fetcher.state import (
    RecordingDoc,
    Status,
    TranscriptState,
    due_retry,
    needs_work,
    on_retryable_failure,
)
from pipeline_common.recall.errors import ErrorKind
from pipeline_common.topics import TRANSCRIPT_EVENTS
from tests.fetcher.support import RETRY_POLICY

pytestmark = pytest.mark.unit

NOW = datetime(2025, 1, 1, tzinfo=UTC)
POLICY = RETRY_POLICY


def state(status: Status = Status.FETCHING, **fields: object) -> TranscriptState:
    return TranscriptState(transcript_id="t1", status=status, first_seen_at=NOW, updated_at=NOW, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (None, True),
        (Status.FETCHING, True),  # a crash mid-work: the redelivered event must do it again
        (Status.GONE, True),
        (Status.REJECTED, True),  # a replayed DLQ message is worked on again
        (Status.READY, False),
        (Status.RETRY_SCHEDULED, False),
        (Status.BLOCKED, False),
    ],
)
def test_which_transcript_done_needs_work(status: Status | None, expected: bool) -> None:
    assert needs_work(None if status is None else state(status)) is expected


def test_retryable_failures_back_off_then_give_up() -> None:
    rng = random.Random(1)
    first = on_retryable_failure(
        state(), kind=ErrorKind.RETRYABLE, reason="503", retry_after=None, policy=POLICY, now=NOW, rng=rng
    )
    assert first.state.status is Status.RETRY_SCHEDULED and not first.dead_letter
    assert first.state.retry is not None and first.state.retry.sequence == 1
    assert NOW < first.state.retry.due_at <= NOW + timedelta(seconds=1)
    second = on_retryable_failure(
        first.state, kind=ErrorKind.RETRYABLE, reason="503", retry_after=30, policy=POLICY, now=NOW, rng=rng
    )
    assert second.state.retry is not None and second.state.retry.due_at >= NOW + timedelta(seconds=30)
    third = on_retryable_failure(
        second.state, kind=ErrorKind.RETRYABLE, reason="503", retry_after=None, policy=POLICY, now=NOW, rng=rng
    )
    assert third.dead_letter and third.state.status is Status.REJECTED and third.state.retry is None
    assert third.state.last_error == "gave up after 3 attempts: 503"


def test_retryable_failures_are_bounded_in_time_too() -> None:
    policy = replace(POLICY, max_attempts=100, give_up_seconds=3600)
    later = NOW + timedelta(seconds=3601)
    decision = on_retryable_failure(
        state(),
        kind=ErrorKind.RETRYABLE,
        reason="503",
        retry_after=None,
        policy=policy,
        now=later,
        rng=random.Random(1),
    )
    assert decision.dead_letter and decision.state.status is Status.REJECTED
    assert decision.state.last_error is not None and "gave up after 1 attempts over 3601s" in decision.state.last_error


def test_operator_problems_never_give_up() -> None:
    current = state()
    for _ in range(10):
        decision = on_retryable_failure(
            current,
            kind=ErrorKind.OPERATOR,
            reason="401",
            retry_after=None,
            policy=POLICY,
            now=NOW,
            rng=random.Random(),
        )
        assert not decision.dead_letter and decision.operator_problem
        current = decision.state
    assert current.status is Status.BLOCKED and current.retry is not None
    assert current.retry.due_at == NOW + timedelta(seconds=900)


def test_only_the_current_schedule_is_acted_on() -> None:
    scheduled = on_retryable_failure(
        state(), kind=ErrorKind.RETRYABLE, reason="x", retry_after=None, policy=POLICY, now=NOW, rng=random.Random()
    ).state
    assert due_retry(scheduled, 1)
    assert not due_retry(scheduled, 2) and not due_retry(None, 1)
    assert not due_retry(scheduled.model_copy(update={"status": Status.READY}), 1)


def test_retry_delay_is_capped() -> None:
    assert POLICY.retry_delay(40, random.Random()) <= 60


def test_recording_doc_round_trips_through_the_table() -> None:
    doc = RecordingDoc(recording_id="r1", transcripts={"t1": state(Status.READY, ready_offset=5)})
    again = RecordingDoc.from_table("r1", doc.to_table())
    assert again == doc
    assert RecordingDoc.from_table("r2", None).transcripts == {}
    assert "source" not in again.public()["transcripts"][0]


def test_partitions_match_kafkas_default_partitioner() -> None:
    from aiokafka.partitioner import DefaultPartitioner

    for key in (b"rec-1", b"a", "recording-é".encode()):
        assert partition_for(key, 6) == DefaultPartitioner()(key, list(range(6)), list(range(6)))
    assert ready_event_id("t1") == "transcript-ready:t1"


def test_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATADIR", "/var/lib/faust")
    monkeypatch.setenv("RECALL_API_BASE_URL", "http://recall-sim:8081")
    monkeypatch.setenv("FETCHER_DOWNLOAD_HOSTS", "*.example-storage.com, files.example.org")
    settings = FetcherSettings()
    assert settings.fetcher_data_dir == "/var/lib/faust"
    assert settings.fetcher_web_port == 6066
    assert settings.download_hosts() == ["*.example-storage.com", "files.example.org", "recall-sim"]
    monkeypatch.delenv("FETCHER_DOWNLOAD_HOSTS")
    monkeypatch.delenv("RECALL_API_BASE_URL")
    defaults = FetcherSettings().download_hosts()
    assert (
        "*.recall.ai" in defaults and "*.s3.us-west-2.amazonaws.com" in defaults and "us-west-2.recall.ai" in defaults
    )
    monkeypatch.setenv("FETCHER_DOWNLOAD_HOSTS", "https://evil.example/x")
    with pytest.raises(ValueError, match="not a host name"):
        FetcherSettings()
    assert settings.faust_worker().session_timeout_seconds == 15.0
    assert settings.faust_worker().partitions == TRANSCRIPT_EVENTS.partitions


def test_the_worker_refuses_to_start_with_a_bad_variable_or_no_api_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "FETCHER_", "TRANSCRIPT_STORE"))}
    bad_timeout = subprocess.run(
        [sys.executable, "-m", "fetcher"],
        env={**env, "RECALL_API_KEY": "k", "FETCHER_SESSION_TIMEOUT_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_timeout.returncode == 2
    assert "FETCHER_SESSION_TIMEOUT_SECONDS" in bad_timeout.stderr
    no_key = subprocess.run([sys.executable, "-m", "fetcher"], env=env, capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 2
    assert "fetcher: " in no_key.stderr and "RECALL_API_KEY: Field required" in no_key.stderr
