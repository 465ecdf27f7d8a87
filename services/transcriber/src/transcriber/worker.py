"""The transcriber's per-event work: one Recall event or retry wake-up in, a decision carried out.

Plain asyncio over a mapping (the faust Table in production, a dict in a test) and injected senders: ``app.py``
only wires this to Kafka. The decisions themselves are :mod:`transcriber.lifecycle`'s.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Protocol, Unpack

from pipeline_common.contracts import TranscriptFailed
from pipeline_common.logging import get_logger
from pipeline_common.recall.errors import InvalidRecallPayload, RecallApiError, RecallNotFound
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.recall.models import Diarization, TranscriptArtifact
from pipeline_common.recall.providers import ProviderConfig
from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDue
from pipeline_common.topics import TRANSCRIBER_RETRIES
from pipeline_common.worker import Inbound
from pipeline_common.worker.base import Routed, SupervisedWorker, WorkerCore
from pipeline_common.worker.supervisor import Work
from transcriber import lifecycle, reconcile
from transcriber.fallback import Policy
from transcriber.metrics import TranscriberMetrics
from transcriber.state import Attempt, RecordingState, Status

_log = get_logger("transcriber")


class RecallApi(Protocol):
    async def create_transcript(
        self,
        recording_id: str,
        provider: ProviderConfig,
        diarization: Diarization | None = None,
        metadata: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> TranscriptArtifact: ...

    async def retrieve_transcript(self, transcript_id: str) -> TranscriptArtifact: ...

    async def list_transcripts(
        self, *, recording_id: str | None = None, **filters: str
    ) -> list[TranscriptArtifact]: ...


@dataclass(frozen=True)
class Senders:
    """Where the transcriber's outputs go; each waits for the broker's acknowledgement."""

    failed: Callable[[TranscriptFailed], Awaitable[None]]
    retry: Callable[[RetryDue], Awaitable[None]]
    dead_letter: Callable[[Inbound, str], Awaitable[None]]
    #: A transcript.* webhook reconstructed from Recall's answer (key, body, headers) onto the transcript topic.
    transcript_event: Callable[[str, bytes, list[tuple[str, bytes]]], Awaitable[None]]


class Transcriber(SupervisedWorker[Policy, Senders, TranscriberMetrics]):
    """One worker's transcriber logic. Every handler of a recording runs under that recording's lock (agents and the
    sweep alike) and inside the supervisor, so it reads the state, awaits Recall and writes the state back with
    nobody else in between, and whatever it raises ends in a retry, then a dead letter."""

    retries_topic = TRANSCRIBER_RETRIES.name

    def __init__(
        self,
        *,
        recall: RecallApi,
        metrics: TranscriberMetrics | None = None,
        **core: Unpack[WorkerCore[Policy, Senders]],
    ) -> None:
        self.recall = recall
        super().__init__(metrics=metrics or TranscriberMetrics(), **core)

    # --- the Table ------------------------------------------------------------------------------------------------

    def pending_retries(self, recording_id: str, value: Mapping[str, Any]) -> Iterator[PendingRetry]:
        retry = value.get("retry")
        if retry and value.get("status") not in (Status.DONE, Status.FAILED):
            due = RetryDue(recording_id, str(retry["attempt"]), int(retry["sequence"]))
            yield PendingRetry(due, datetime.fromisoformat(retry["due_at"]))

    def load(self, recording_id: str) -> RecordingState | None:
        return RecordingState.from_table(self.table.get(recording_id))

    def store(self, state: RecordingState) -> None:
        self.table.put(state.recording_id, state.to_table())

    # --- events in ------------------------------------------------------------------------------------------------

    def route(self, inbound: Inbound) -> Routed:
        webhook = self._parse(inbound)
        assert webhook.recording_id is not None
        self.metrics.events.labels(event_type=webhook.event).inc()
        return webhook.recording_id, lambda: self._handle_webhook(webhook)

    def _parse(self, inbound: Inbound) -> WebhookEvent:
        try:
            webhook = parse_webhook_event(inbound.value)
        except InvalidRecallPayload as invalid:
            raise PoisonMessage(str(invalid)) from None
        if webhook.recording_id is None:
            raise PoisonMessage(f"{webhook.event} carries no recording id")
        return webhook

    async def _handle_webhook(self, webhook: WebhookEvent) -> None:
        decision = self.decide(webhook)
        if decision.state is None and decision.create is None and decision.failed is None:
            assert webhook.recording_id is not None
            decision = lifecycle.resume_unanswered(self.load(webhook.recording_id), self.policy) or decision
        sent_at = webhook.updated_at
        if decision.create is not None and sent_at is not None and self._older_than_replay_window(sent_at):
            # A replay, a backlog or a DLQ replay of an old recording.done: its first create may be long done
            # (and its state since removed after the retention).
            decision = dataclasses.replace(decision, create=dataclasses.replace(decision.create, look_first=True))
        await self.carry_out(decision, webhook.event)

    async def handle_retry(self, due: RetryDue) -> None:
        if not due.target.isdigit():
            raise PoisonMessage(f"retry target {due.target[:40]!r} is not an attempt number")
        state = self.load(due.recording_id)
        unsent = lifecycle.unsent_failure(state)
        if unsent is not None:
            await self.carry_out(unsent, "retry_due")
            return
        decision = lifecycle.on_retry_due(state, int(due.target), due.sequence, self.clock(), self.policy)
        await self.carry_out(decision, "retry_due")

    # --- decisions ------------------------------------------------------------------------------------------------

    def decide(self, event: WebhookEvent) -> lifecycle.Decision:
        assert event.recording_id is not None
        state = self.load(event.recording_id)
        unsent = lifecycle.unsent_failure(state)
        if unsent is not None:
            return unsent
        family, name, moment = event.family, event.name, self.clock()
        if family == "recording" and name == "done":
            return lifecycle.on_recording_done(state, event, self.policy, moment)
        if family == "recording" and name in ("failed", "deleted"):
            return lifecycle.on_recording_gone(state, event, moment)
        if family == "transcript" and name == "failed":
            return lifecycle.on_transcript_failed(state, event, self.policy, moment)
        if family == "transcript" and name == "done":
            return lifecycle.on_transcript_done(state, event, self.policy, moment)
        return lifecycle.Decision(state=None, note=f"{event.event} needs nothing from the transcriber")

    async def carry_out(self, decision: lifecycle.Decision, event_type: str) -> None:
        """Store the new state first, then act: a TranscriptFailed is emitted, then recorded as emitted; a create's
        outcome is decided from the state as it is after the call (nobody else writes it meanwhile) and carried out
        in turn."""
        state = decision.state
        if state is not None:
            self.store(state)
        if decision.fallback:
            self.metrics.fallbacks.inc()
        _log.info(decision.note, event_type=event_type, recording_id=(state.recording_id if state else None))
        self.faults.maybe_raise("transcriber.carry_out")
        if decision.failed is not None:
            await self.emit_failed(decision.failed)
        if decision.create is not None:
            current = self.load(decision.create.recording_id)
            assert current is not None
            await self.carry_out(await self.call_create(current, decision.create), "create_transcript")

    async def call_create(self, state: RecordingState, call: lifecycle.CreateCall) -> lifecycle.Decision:
        started = time.perf_counter()
        operation = "create_transcript"
        attempt = state.attempt(call.attempt)
        try:
            if attempt is not None and (call.look_first or self._older_than_replay_window(attempt.requested_at)):
                existing = await self._find_ours(state, attempt)
                if existing is not None:
                    _log.info("adopting the transcript Recall already made", recording_id=call.recording_id)
                    return lifecycle.on_create_succeeded(state, call.attempt, existing.id, self.clock())
            artifact = await self.recall.create_transcript(
                call.recording_id, call.provider, self.policy.diarization, call.metadata, call.idempotency_key
            )
        except RecallApiError as error:
            self.metrics.recall_latency.labels(operation=operation).observe(time.perf_counter() - started)
            self.metrics.creates.labels(provider=call.provider.provider_name, outcome=error.kind.value).inc()
            self.metrics.recall_calls.labels(operation=operation, outcome=error.kind.value).inc()
            decision = lifecycle.on_create_failed(state, call.attempt, error, self.policy, self.clock(), self.rng)
            if decision.operator_problem:
                self.metrics.operator_problem(error.status)
                _log.error(
                    "Recall refuses our credentials or billing: fix RECALL_API_KEY or the account; retrying slowly",
                    recording_id=call.recording_id,
                    status=error.status,
                    error=str(error),
                )
            return decision
        self.metrics.recall_latency.labels(operation=operation).observe(time.perf_counter() - started)
        self.metrics.creates.labels(provider=call.provider.provider_name, outcome="created").inc()
        self.metrics.recall_calls.labels(operation=operation, outcome="ok").inc()
        return lifecycle.on_create_succeeded(state, call.attempt, artifact.id, self.clock())

    def _older_than_replay_window(self, moment: datetime) -> bool:
        """Recall replays an Idempotency-Key's answer for an hour: later, the same key may create a second transcript
        (and a second bill), so we look first."""
        return (self.clock() - moment).total_seconds() >= self.policy.idempotency_window_seconds

    async def _find_ours(self, state: RecordingState, attempt: Attempt) -> TranscriptArtifact | None:
        found: list[TranscriptArtifact] = []
        if attempt.transcript_id is not None:
            try:
                found = [await self.recall.retrieve_transcript(attempt.transcript_id)]
            except RecallNotFound:
                found = []
        if not found:
            found = await self.recall.list_transcripts(recording_id=state.recording_id)
        return reconcile.ours(found, attempt, self.policy)

    async def give_up(self, recording_id: str, reason: str) -> None:
        """The supervisor's bound is reached: the recording fails with ``internal_error`` (unless it already ended)."""
        moment = self.clock()
        state = self.load(recording_id) or RecordingState(
            recording_id=recording_id, created_at=moment, updated_at=moment
        )
        await self.carry_out(lifecycle.unsent_failure(state) or lifecycle.give_up(state, moment, reason), "give_up")

    # --- the sweep: deadlines, unsent failures, retention ---------------------------------------------------------

    def sweep_work(self, key: str, value: Mapping[str, Any], now: datetime) -> Work | None:
        state = RecordingState.from_table(value)
        if state is None:
            return None
        unsent = lifecycle.unsent_failure(state)
        if unsent is not None:
            return partial(self.carry_out, unsent, "sweep")
        if state.terminal:
            expired = (now - state.updated_at).total_seconds() >= self.limits.retention_seconds
            return partial(self._expire, key) if expired else None
        attempt = reconcile.past_deadline(state, now, self.limits.deadline_seconds)
        return partial(self._reconcile, state, attempt) if attempt is not None else None

    async def _expire(self, recording_id: str) -> None:
        self.table.delete(recording_id)
        self.metrics.expired.inc()

    async def _reconcile(self, state: RecordingState, attempt: Attempt) -> None:
        found = await self._find_ours(state, attempt)
        moment = self.clock()
        if found is None:
            self.metrics.reconciled.labels(outcome="missing").inc()
            note = f"past the deadline and Recall has no transcript for attempt {attempt.number}: creating it"
            await self.carry_out(lifecycle.repeat_create(state, self.policy, note), "deadline")
            return
        if found.is_done or found.is_failed:
            self.metrics.reconciled.labels(outcome=found.status_code).inc()
            body, headers = reconcile.webhook_for(state, found, moment)
            await self.senders.transcript_event(state.recording_id, body, headers)
            note = f"past the deadline; Recall says {found.status_code}: its webhook published again"
        else:
            self.metrics.reconciled.labels(outcome="processing").inc()
            note = f"past the deadline; Recall says {found.status_code}: waiting another deadline"
        if attempt.transcript_id is None:
            state = lifecycle.on_create_succeeded(state, attempt.number, found.id, moment).state or state
        await self.carry_out(lifecycle.checked(state, moment, note), "deadline")

    # --- events out -----------------------------------------------------------------------------------------------

    async def emit_failed(self, failed: TranscriptFailed) -> None:
        await self.senders.failed(failed)
        self.metrics.terminal_failures.labels(reason=failed.reason.value).inc()
        state = self.load(failed.recording_id)
        if state is not None and not state.failed_emitted:
            self.store(state.model_copy(update={"failed_emitted": True}))
