"""How a recording's state moves on each event, and what must happen as a result (a create call, a TranscriptFailed).

Every function takes the current state (or None) and returns a :class:`Decision`; the faust agent stores the new
state *before* it performs the decision's create call, so a crash can repeat a call (absorbed by the Idempotency-Key)
but never lose one. Every handler tolerates the same event twice, out of order, or late.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline_common.contracts import FailureReason, TranscriptFailed
from pipeline_common.recall.errors import ErrorKind, RecallApiError, RecallTranscriptLimitReached
from pipeline_common.recall.events import WebhookEvent
from pipeline_common.recall.providers import ProviderConfig
from transcriber.fallback import Policy, next_provider_index
from transcriber.state import Attempt, RecordingState, RetrySchedule, Status


@dataclass(frozen=True)
class CreateCall:
    """Call Create Async Transcript for ``attempt`` (again, if it was called before: same Idempotency-Key)."""

    recording_id: str
    attempt: int
    provider: ProviderConfig
    idempotency_key: str
    metadata: dict[str, str]
    #: Look for the transcript at Recall before creating it (the event is older than Recall's replay window).
    look_first: bool = False


@dataclass(frozen=True)
class Decision:
    state: RecordingState | None  # the state to store; None when nothing changed
    note: str  # what happened, for the log line
    create: CreateCall | None = None
    failed: TranscriptFailed | None = None
    retry_scheduled: bool = False
    operator_problem: bool = False
    fallback: bool = False  # the chain moved to another provider


def _nothing(note: str) -> Decision:
    return Decision(state=None, note=note)


def _new_attempt(state: RecordingState, provider_index: int, policy: Policy, now: datetime) -> Attempt:
    number = len(state.attempts) + 1
    return Attempt(
        number=number,
        provider_index=provider_index,
        provider=policy.chain[provider_index].provider_name,
        idempotency_key=policy.idempotency_key(state.recording_id, number),
        requested_at=now,
        updated_at=now,
    )


def _create_call(state: RecordingState, attempt: Attempt, policy: Policy) -> CreateCall:
    return CreateCall(
        recording_id=state.recording_id,
        attempt=attempt.number,
        provider=policy.chain[attempt.provider_index],
        idempotency_key=attempt.idempotency_key,
        metadata=policy.create_metadata(state.recording_id, attempt.number),
    )


def failed_event(state: RecordingState) -> TranscriptFailed:
    """The TranscriptFailed a FAILED state stands for (the same event each time it is built)."""
    assert state.failure_reason is not None
    return TranscriptFailed(
        recording_id=state.recording_id,
        bot_id=state.bot_id,
        reason=state.failure_reason,
        attempts=[attempt.record() for attempt in state.attempts],
        recording_metadata=state.recording_metadata,
        failed_at=state.failed_at or state.updated_at,
    )


def _fail(state: RecordingState, reason: FailureReason, now: datetime, note: str) -> Decision:
    failed_state = state.model_copy(
        update={
            "status": Status.FAILED,
            "failure_reason": reason,
            "failed_at": now,
            "failed_emitted": False,
            "retry": None,
            "updated_at": now,
        }
    )
    return Decision(state=failed_state, note=note, failed=failed_event(failed_state))


def give_up(state: RecordingState, now: datetime, reason: str) -> Decision:
    """The supervisor's last word on a recording its events kept failing on: failed with ``internal_error``."""
    if state.terminal:
        return _nothing(f"already {state.status.value}: {reason}")
    return _fail(state, FailureReason.INTERNAL_ERROR, now, reason)


def unsent_failure(state: RecordingState | None) -> Decision | None:
    """A FAILED state whose TranscriptFailed the broker never acknowledged: emit it (again)."""
    if state is None or state.status is not Status.FAILED or state.failed_emitted:
        return None
    return Decision(state=None, note="emitting a TranscriptFailed not yet acknowledged", failed=failed_event(state))


def _replace_attempt(state: RecordingState, attempt: Attempt, **changes: object) -> list[Attempt]:
    return [a.model_copy(update=changes) if a.number == attempt.number else a for a in state.attempts]


def new_state(event: WebhookEvent, now: datetime) -> RecordingState:
    assert event.recording_id is not None
    return RecordingState(
        recording_id=event.recording_id,
        bot_id=event.bot_id,
        recording_metadata=event.recording_metadata,
        created_at=now,
        updated_at=now,
    )


def on_recording_done(state: RecordingState | None, event: WebhookEvent, policy: Policy, now: datetime) -> Decision:
    if state is None:
        fresh = new_state(event, now)
        attempt = _new_attempt(fresh, 0, policy, now)
        started = fresh.model_copy(update={"attempts": [attempt]})
        return Decision(state=started, note="first attempt requested", create=_create_call(started, attempt, policy))
    if state.terminal:
        return _nothing(f"recording already {state.status.value}")
    current = state.current
    if (
        current is not None
        and current.outcome == "requested"
        and current.transcript_id is None
        and state.status is Status.TRANSCRIBING
    ):
        # We recorded "requested" but never the answer (a crash mid-call): ask again with the same key.
        return Decision(state=None, note="repeating an unanswered create", create=_create_call(state, current, policy))
    return _nothing("duplicate recording.done")


def on_create_succeeded(state: RecordingState, attempt_number: int, transcript_id: str, now: datetime) -> Decision:
    attempt = state.attempt(attempt_number)
    if attempt is None:
        return _nothing(f"create answered for unknown attempt {attempt_number}")
    changes: dict[str, object] = {"transcript_id": transcript_id, "updated_at": now}
    if attempt.outcome == "requested":
        changes["outcome"] = "created"
    update: dict[str, object] = {"attempts": _replace_attempt(state, attempt, **changes), "updated_at": now}
    if state.retry is not None and state.retry.attempt == attempt_number:
        update["retry"] = None
    if state.status in (Status.RETRY_SCHEDULED, Status.BLOCKED):
        update["status"] = Status.TRANSCRIBING
    return Decision(state=state.model_copy(update=update), note="transcript created")


def on_create_failed(
    state: RecordingState, attempt_number: int, error: RecallApiError, policy: Policy, now: datetime, rng: random.Random
) -> Decision:
    attempt = state.attempt(attempt_number)
    if attempt is None or state.terminal:
        return _nothing("create failed for an attempt that no longer matters")
    failures = attempt.create_failures + 1
    if error.kind is ErrorKind.TERMINAL or (
        error.kind is ErrorKind.FIREWALL and failures > policy.firewall_max_retries
    ):
        rejected = state.model_copy(
            update={
                "attempts": _replace_attempt(
                    state,
                    attempt,
                    outcome="rejected",
                    http_status=error.status,
                    message=str(error)[:500],
                    updated_at=now,
                )
            }
        )
        if error.kind is ErrorKind.FIREWALL:
            note = f"Recall's firewall blocked the create {failures} times"
            return _fail(rejected, FailureReason.BLOCKED_BY_FIREWALL, now, note)
        if isinstance(error, RecallTranscriptLimitReached):
            return _fail(rejected, FailureReason.TRANSCRIPT_LIMIT, now, "Recall's 10-transcript limit reached")
        return _fail(rejected, FailureReason.REJECTED_BY_RECALL, now, "Recall rejected the create")
    operator = error.kind is ErrorKind.OPERATOR
    trying_for = (now - attempt.requested_at).total_seconds()
    if not operator and (failures >= policy.max_create_failures or trying_for >= policy.give_up_seconds):
        unavailable = state.model_copy(
            update={
                "attempts": _replace_attempt(
                    state, attempt, create_failures=failures, http_status=error.status, message=str(error)[:500]
                )
            }
        )
        note = f"create failed {failures} times over {trying_for:.0f}s; giving up"
        return _fail(unavailable, FailureReason.RECALL_UNAVAILABLE, now, note)
    delay = policy.operator_retry_delay(failures) if operator else policy.retry_delay(failures, rng, error.retry_after)
    sequence = state.retry_sequence + 1
    scheduled = state.model_copy(
        update={
            "attempts": _replace_attempt(
                state,
                attempt,
                create_failures=failures,
                http_status=error.status,
                message=str(error)[:500],
                updated_at=now,
            ),
            "status": Status.BLOCKED if operator else Status.RETRY_SCHEDULED,
            "retry": RetrySchedule(
                attempt=attempt_number,
                sequence=sequence,
                due_at=now + timedelta(seconds=delay),
                reason=f"{type(error).__name__} (HTTP {error.status})" if error.status else type(error).__name__,
            ),
            "retry_sequence": sequence,
            "updated_at": now,
        }
    )
    note = f"create failed ({error.kind.value}); retry in {delay:.1f}s"
    if error.kind is ErrorKind.FIREWALL:
        note = (
            f"create blocked by Recall's firewall (HTTP 403, not a credentials problem); "
            f"retry {failures} of {policy.firewall_max_retries} in {delay:.1f}s"
        )
    return Decision(state=scheduled, note=note, retry_scheduled=True, operator_problem=operator)


def on_retry_due(
    state: RecordingState | None, attempt_number: int, sequence: int, now: datetime, policy: Policy
) -> Decision:
    if state is None or state.terminal or state.retry is None:
        return _nothing("no retry pending")
    if state.retry.sequence != sequence or state.retry.attempt != attempt_number:
        return _nothing("stale retry wake-up")
    if state.retry.due_at > now:
        return _nothing("retry not due yet")
    attempt = state.attempt(attempt_number)
    assert attempt is not None
    # The schedule stays in the state until the call's outcome is recorded: a crash mid-call is retried again.
    return Decision(state=None, note="retrying create", create=_create_call(state, attempt, policy))


def _find_attempt(state: RecordingState, event: WebhookEvent, policy: Policy) -> Attempt | None:
    """Our attempt this transcript event is about: by transcript id, else by the metadata we attached to the create
    (the create's response may have been lost, or not recorded yet)."""
    if event.transcript_id is not None:
        found = state.attempt_for_transcript(event.transcript_id)
        if found is not None:
            return found
    metadata = event.transcript_metadata
    if metadata.get("pipeline") != policy.idempotency_prefix:
        return None
    try:
        number = int(str(metadata.get("pipeline_attempt")))
    except ValueError:
        return None
    attempt = state.attempt(number)
    if attempt is not None and attempt.transcript_id in (None, event.transcript_id):
        return attempt
    return None


def _our_attempt(
    state: RecordingState | None, event: WebhookEvent, policy: Policy
) -> tuple[RecordingState, Attempt] | Decision:
    """The recording and our attempt a transcript.* event is about, or the decision to ignore an event not ours."""
    if state is None:
        return _nothing(f"{event.event} for a recording this pipeline never transcribed")
    attempt = _find_attempt(state, event, policy)
    if attempt is None:
        return _nothing(f"{event.event} for a transcript this pipeline did not create")
    return state, attempt


def on_transcript_failed(state: RecordingState | None, event: WebhookEvent, policy: Policy, now: datetime) -> Decision:
    found = _our_attempt(state, event, policy)
    if isinstance(found, Decision):
        return found
    state, attempt = found
    if attempt.outcome in ("failed", "done"):
        return _nothing(f"attempt {attempt.number} already {attempt.outcome}")
    attempts = _replace_attempt(
        state, attempt, outcome="failed", transcript_id=event.transcript_id, sub_code=event.sub_code, updated_at=now
    )
    marked = state.model_copy(update={"attempts": attempts, "updated_at": now})
    if state.terminal:
        return Decision(state=marked, note="late transcript.failed recorded")
    if state.current is None or attempt.number != state.current.number:
        return Decision(state=marked, note=f"transcript.failed for old attempt {attempt.number} recorded")
    index = next_provider_index(marked, policy, event.sub_code)
    if index is None:
        return _fail(marked, FailureReason.PROVIDERS_EXHAUSTED, now, "every provider failed")
    following = _new_attempt(marked, index, policy, now)
    moved = marked.model_copy(
        update={"attempts": [*marked.attempts, following], "status": Status.TRANSCRIBING, "retry": None}
    )
    note = f"attempt {attempt.number} failed ({event.sub_code}); attempt {following.number} with {following.provider}"
    return Decision(state=moved, note=note, create=_create_call(moved, following, policy), fallback=True)


def on_transcript_done(state: RecordingState | None, event: WebhookEvent, policy: Policy, now: datetime) -> Decision:
    found = _our_attempt(state, event, policy)
    if isinstance(found, Decision):
        return found
    state, attempt = found
    if attempt.outcome == "done":
        return _nothing("duplicate transcript.done")
    update: dict[str, object] = {
        "attempts": _replace_attempt(state, attempt, outcome="done", transcript_id=event.transcript_id, updated_at=now),
        "updated_at": now,
    }
    if not state.terminal:
        update |= {"status": Status.DONE, "retry": None}
    return Decision(state=state.model_copy(update=update), note=f"attempt {attempt.number} done")


def on_recording_gone(state: RecordingState | None, event: WebhookEvent, now: datetime) -> Decision:
    reason = FailureReason.RECORDING_DELETED if event.name == "deleted" else FailureReason.RECORDING_FAILED
    if state is not None and state.terminal:
        return _nothing(f"recording.{event.name} after the recording was already {state.status.value}")
    return _fail(state or new_state(event, now), reason, now, f"recording {event.name}")


def repeat_create(state: RecordingState, policy: Policy, note: str) -> Decision:
    """Call the current attempt's create again (same Idempotency-Key): Recall has no transcript for it."""
    current = state.current
    if current is None or state.terminal:
        return _nothing("nothing to repeat")
    return Decision(state=None, note=note, create=_create_call(state, current, policy))


def checked(state: RecordingState, now: datetime, note: str) -> Decision:
    """Recall still works on it: look again a deadline later."""
    return Decision(state=state.model_copy(update={"checked_at": now}), note=note)


def resume_unanswered(state: RecordingState | None, policy: Policy) -> Decision | None:
    """The current attempt was requested but its create's answer never recorded (the handler died or raised between
    storing "requested" and the answer): whatever event comes next repeats the create, with the same key. Safe only
    under the recording's lock, where no other create for it can be in flight."""
    if state is None or state.status is not Status.TRANSCRIBING or state.retry is not None:
        return None
    current = state.current
    if current is None or current.outcome != "requested" or current.transcript_id is not None:
        return None
    return Decision(state=None, note="repeating an unanswered create", create=_create_call(state, current, policy))
