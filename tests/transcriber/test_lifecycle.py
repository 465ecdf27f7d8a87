"""The transcriber's decisions, as plain functions over state: no broker, no HTTP."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipeline_common.contracts import FailureReason
from pipeline_common.recall.errors import (
    RecallBadRequest,
    RecallRateLimited,
    RecallResponseLost,
    RecallServerError,
    RecallTranscriptLimitReached,
    RecallUnauthorized,
)
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.recall.models import Diarization
from pipeline_common.recall.providers import ProviderConfig
from transcriber import lifecycle
from transcriber.fallback import Policy, next_provider_index
from transcriber.state import RecordingState, Status

pytestmark = pytest.mark.unit

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
REC = "rec-1"


def policy(*providers: str, retry_same: frozenset[str] = frozenset(), max_attempts: int = 10) -> Policy:
    chain = providers or ("recallai_async", "deepgram_async")
    return Policy(
        chain=tuple(ProviderConfig.of(name) for name in chain),
        diarization=Diarization(use_separate_streams_when_available=True),
        retry_same_provider_on=retry_same,
        max_attempts=max_attempts,
        retry_base_seconds=1.0,
        retry_max_seconds=300.0,
        operator_retry_seconds=60.0,
        operator_retry_max_seconds=900.0,
        idempotency_prefix="test",
    )


def event(
    name: str, *, transcript_id: str | None = None, sub_code: str | None = None, metadata: dict[str, Any] | None = None
) -> WebhookEvent:
    data: dict[str, Any] = {
        "data": {"code": name.split(".")[1], "sub_code": sub_code, "updated_at": NOW.isoformat()},
        "recording": {"id": REC, "metadata": {"team": "a"}},
        "bot": {"id": "bot-1", "metadata": {}},
    }
    if transcript_id is not None or metadata is not None:
        data["transcript"] = {"id": transcript_id or "unknown", "metadata": metadata or {}}
    return parse_webhook_event(json.dumps({"event": name, "data": data}))


def started(p: Policy) -> RecordingState:
    decision = lifecycle.on_recording_done(None, event("recording.done"), p, NOW)
    assert decision.state is not None
    return decision.state


def created(p: Policy, transcript_id: str = "t1") -> RecordingState:
    decision = lifecycle.on_create_succeeded(started(p), 1, transcript_id, NOW)
    assert decision.state is not None
    return decision.state


def test_first_recording_done_requests_attempt_one_with_the_primary_provider() -> None:
    p = policy()
    decision = lifecycle.on_recording_done(None, event("recording.done"), p, NOW)
    assert decision.create is not None
    assert decision.create.provider.provider_name == "recallai_async"
    assert decision.create.idempotency_key == "test-rec-1-attempt-1"
    assert decision.create.metadata == {"pipeline": "test", "pipeline_attempt": "1", "recording_id": REC}
    assert decision.state is not None
    assert [a.outcome for a in decision.state.attempts] == ["requested"]
    assert decision.state.recording_metadata == {"team": "a"}


def test_a_duplicate_recording_done_creates_nothing() -> None:
    p = policy()
    decision = lifecycle.on_recording_done(created(p), event("recording.done"), p, NOW)
    assert decision.create is None and decision.state is None


def test_recording_done_after_a_crash_mid_call_repeats_the_same_create() -> None:
    p = policy()
    decision = lifecycle.on_recording_done(started(p), event("recording.done"), p, NOW)
    assert decision.create is not None
    assert decision.create.idempotency_key == "test-rec-1-attempt-1"  # same key: Recall absorbs the repeat


def test_transcript_failed_moves_to_the_next_provider() -> None:
    p = policy()
    decision = lifecycle.on_transcript_failed(
        created(p), event("transcript.failed", transcript_id="t1", sub_code="provider_connection_failed"), p, NOW
    )
    assert decision.create is not None and decision.fallback
    assert decision.create.provider.provider_name == "deepgram_async"
    assert decision.create.idempotency_key == "test-rec-1-attempt-2"
    assert decision.state is not None
    assert [(a.number, a.outcome, a.sub_code) for a in decision.state.attempts] == [
        (1, "failed", "provider_connection_failed"),
        (2, "requested", None),
    ]


def test_exhausted_chain_emits_one_transcript_failed_with_every_attempt() -> None:
    p = policy()
    state = created(p)
    state = lifecycle.on_transcript_failed(
        state, event("transcript.failed", transcript_id="t1", sub_code="x"), p, NOW
    ).state
    assert state is not None
    state = lifecycle.on_create_succeeded(state, 2, "t2", NOW).state
    assert state is not None
    decision = lifecycle.on_transcript_failed(
        state, event("transcript.failed", transcript_id="t2", sub_code="y"), p, NOW
    )
    assert decision.create is None
    assert decision.failed is not None
    assert decision.failed.reason is FailureReason.PROVIDERS_EXHAUSTED
    assert [(a.provider, a.transcript_id, a.sub_code) for a in decision.failed.attempts] == [
        ("recallai_async", "t1", "x"),
        ("deepgram_async", "t2", "y"),
    ]
    assert decision.state is not None and decision.state.status is Status.FAILED
    again = lifecycle.on_transcript_failed(decision.state, event("transcript.failed", transcript_id="t2"), p, NOW)
    assert again.failed is None and again.create is None


def test_recoverable_sub_code_retries_the_same_provider_once_when_configured() -> None:
    p = policy(retry_same=frozenset({"provider_connection_failed"}))
    failure = event("transcript.failed", transcript_id="t1", sub_code="provider_connection_failed")
    first = lifecycle.on_transcript_failed(created(p), failure, p, NOW)
    assert first.create is not None and first.create.provider.provider_name == "recallai_async"
    assert first.state is not None
    second_state = lifecycle.on_create_succeeded(first.state, 2, "t2", NOW).state
    assert second_state is not None
    second = lifecycle.on_transcript_failed(
        second_state, event("transcript.failed", transcript_id="t2", sub_code="provider_connection_failed"), p, NOW
    )
    assert second.create is not None and second.create.provider.provider_name == "deepgram_async"


def test_never_more_attempts_than_the_limit() -> None:
    p = policy(*(["recallai_async"] * 10), max_attempts=3)
    state = created(p)
    for number in range(1, 4):
        decision = lifecycle.on_transcript_failed(
            state, event("transcript.failed", transcript_id=f"t{number}", sub_code="x"), p, NOW
        )
        assert decision.state is not None
        if number < 3:
            assert decision.create is not None
            state = lifecycle.on_create_succeeded(decision.state, number + 1, f"t{number + 1}", NOW).state  # type: ignore[assignment]
        else:
            assert decision.create is None and decision.failed is not None
            assert len(decision.failed.attempts) == 3


def test_failed_for_an_unknown_transcript_or_an_old_attempt_changes_nothing_important() -> None:
    p = policy()
    state = created(p)
    foreign = lifecycle.on_transcript_failed(state, event("transcript.failed", transcript_id="someone-else"), p, NOW)
    assert foreign.state is None and foreign.create is None
    assert lifecycle.on_transcript_failed(None, event("transcript.failed", transcript_id="t1"), p, NOW).state is None


def test_failed_before_the_create_response_was_recorded_is_matched_by_metadata() -> None:
    p = policy()
    metadata = {"pipeline": "test", "pipeline_attempt": "1"}
    decision = lifecycle.on_transcript_failed(
        started(p), event("transcript.failed", transcript_id="t-lost", sub_code="x", metadata=metadata), p, NOW
    )
    assert decision.create is not None and decision.create.attempt == 2
    assert decision.state is not None and decision.state.attempts[0].transcript_id == "t-lost"


def test_transcript_done_marks_the_recording_done_and_is_idempotent() -> None:
    p = policy()
    decision = lifecycle.on_transcript_done(created(p), event("transcript.done", transcript_id="t1"), p, NOW)
    assert decision.state is not None and decision.state.status is Status.DONE
    assert (
        lifecycle.on_transcript_done(decision.state, event("transcript.done", transcript_id="t1"), p, NOW).state is None
    )


@pytest.mark.parametrize(
    ("error", "status", "at_least"),
    [
        (RecallRateLimited("slow down", status=429, retry_after=30), Status.RETRY_SCHEDULED, 30),
        (RecallServerError("oops", status=503), Status.RETRY_SCHEDULED, 0.5),
        (RecallResponseLost("lost"), Status.RETRY_SCHEDULED, 0.5),
        (RecallUnauthorized("who", status=401), Status.BLOCKED, 60),
    ],
)
def test_retryable_and_operator_errors_schedule_a_retry(error: Exception, status: Status, at_least: float) -> None:
    p = policy()
    decision = lifecycle.on_create_failed(started(p), 1, error, p, NOW, random.Random(1))  # type: ignore[arg-type]
    assert decision.state is not None
    assert decision.state.status is status
    assert decision.create is None and decision.failed is None
    retry = decision.state.retry
    assert retry is not None and retry.attempt == 1 and retry.sequence == 1
    assert retry.due_at >= NOW + timedelta(seconds=at_least)
    assert decision.operator_problem is (status is Status.BLOCKED)
    due = lifecycle.on_retry_due(decision.state, 1, 1, retry.due_at, p)
    assert due.create is not None and due.create.idempotency_key == "test-rec-1-attempt-1"
    assert lifecycle.on_retry_due(decision.state, 1, 1, NOW, p).create is None  # not due yet
    assert lifecycle.on_retry_due(decision.state, 1, 0, retry.due_at, p).create is None  # stale wake-up
    done = lifecycle.on_create_succeeded(decision.state, 1, "t1", NOW)
    assert done.state is not None and done.state.retry is None and done.state.status is Status.TRANSCRIBING


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (RecallTranscriptLimitReached("limit", status=400), FailureReason.TRANSCRIPT_LIMIT),
        (RecallBadRequest("bad provider options", status=400), FailureReason.REJECTED_BY_RECALL),
    ],
)
def test_terminal_rejections_end_the_recording(error: Exception, reason: FailureReason) -> None:
    p = policy()
    decision = lifecycle.on_create_failed(started(p), 1, error, p, NOW, random.Random(1))  # type: ignore[arg-type]
    assert decision.failed is not None and decision.failed.reason is reason
    assert decision.failed.attempts[0].outcome == "rejected"
    assert decision.failed.attempts[0].http_status == 400


@pytest.mark.parametrize(
    ("name", "reason"), [("recording.failed", "recording_failed"), ("recording.deleted", "recording_deleted")]
)
def test_recording_failed_or_deleted_ends_it_unless_already_terminal(name: str, reason: str) -> None:
    p = policy()
    decision = lifecycle.on_recording_gone(created(p), event(name), NOW)
    assert decision.failed is not None and decision.failed.reason.value == reason
    assert lifecycle.on_recording_gone(decision.state, event(name), NOW).failed is None
    done = lifecycle.on_transcript_done(created(p), event("transcript.done", transcript_id="t1"), p, NOW).state
    assert lifecycle.on_recording_gone(done, event(name), NOW).failed is None


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    p, rng = policy(), random.Random(7)
    delays = [p.retry_delay(n, rng) for n in range(1, 12)]
    assert all(0.5 <= d <= 300 for d in delays)
    assert delays[5] > delays[0]
    assert p.retry_delay(1, rng, 120) >= 120
    assert p.operator_retry_delay(1) == 60 and p.operator_retry_delay(10) == 900


def test_next_provider_index_without_a_current_attempt_is_the_primary() -> None:
    p = policy()
    empty = RecordingState(recording_id=REC, created_at=NOW, updated_at=NOW)
    assert next_provider_index(empty, p, None) == 0


def test_recalls_firewall_403_is_its_own_kind_retried_a_bounded_number_of_times() -> None:
    # Issue 14 item 5: 403 means Recall's firewall blocked the request, not bad credentials; it was retried slowly
    # forever as an operator problem.
    from pipeline_common.recall.errors import ErrorKind, error_for_status

    error = error_for_status(403, method="POST", path="/api/v1/x", detail="Request blocked", retry_after=None)
    assert error.kind is ErrorKind.FIREWALL
    p = policy()
    state = started(p)
    for failure in range(1, p.firewall_max_retries + 1):
        decision = lifecycle.on_create_failed(state, 1, error, p, NOW, random.Random(1))
        assert decision.state is not None and decision.failed is None, failure
        assert decision.state.status is Status.RETRY_SCHEDULED
        assert not decision.operator_problem
        assert "firewall" in decision.note
        state = decision.state
    final = lifecycle.on_create_failed(state, 1, error, p, NOW, random.Random(1))
    assert final.failed is not None
    assert final.failed.reason is FailureReason.BLOCKED_BY_FIREWALL
    assert final.failed.attempts[0].http_status == 403


def test_the_metadata_we_send_always_fits_recalls_limits() -> None:
    # Issue 14 item 7: string keys and values of at most 500 characters, no nesting. The prefix is checked at start-up
    # (TRANSCRIBER_IDEMPOTENCY_PREFIX, at most 64 characters) and ids are at most 128: the longest still fits.
    from pipeline_common.recall.models import check_metadata

    p = policy()
    longest = Policy(**{**vars(p), "idempotency_prefix": "p" * 64})
    metadata = longest.create_metadata("r" * 128, 10)
    assert check_metadata(metadata) == metadata
