"""The fetcher's per-event work: a ``transcript.done`` (or its retry wake-up) in, a transcript stored and announced.

Plain asyncio over a mapping (the faust Table in production, a dict in a test) and injected senders: ``app.py`` only
wires this to Kafka. One way through: :mod:`fetcher.fetch` (Recall -> store objects), :mod:`fetcher.publish`
(event, manifest, announcement), then the Table notes the outcome; the decisions are :mod:`fetcher.state`'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any, Unpack

from fetcher.fetch import Gone, Job, Rejected, RetryLater, TranscriptFetcher
from fetcher.metrics import FetcherMetrics
from fetcher.publish import Published, Publisher
from fetcher.state import (
    ENDED,
    RecordingDoc,
    RetryPolicy,
    Status,
    TranscriptState,
    due_retry,
    ended,
    expired,
    needs_work,
    on_retryable_failure,
    past_deadline,
    resume_now,
    scheduled_retries,
    start_work,
    transcript_failed,
)
from pipeline_common.contracts import FailureReason, TranscriptFailed
from pipeline_common.logging import get_logger
from pipeline_common.recall.errors import InvalidRecallPayload
from pipeline_common.recall.events import WebhookEvent, parse_webhook_event
from pipeline_common.retries import PendingRetry, PoisonMessage, RetryDue
from pipeline_common.topics import FETCHER_RETRIES
from pipeline_common.worker import Inbound
from pipeline_common.worker.base import Routed, SupervisedWorker, WorkerCore
from pipeline_common.worker.supervisor import Work

_log = get_logger("fetcher")


def _unsent(state: TranscriptState) -> bool:
    """A rejected or gone transcript whose ``transcripts.failed`` the broker never acknowledged (the outbox's mark)."""
    return state.status in (Status.REJECTED, Status.GONE) and not state.failed_emitted


@dataclass(frozen=True)
class Senders:
    retry: Callable[[RetryDue], Awaitable[None]]
    dead_letter: Callable[[Inbound, str], Awaitable[None]]
    failed: Callable[[TranscriptFailed], Awaitable[None]]


class Fetcher(SupervisedWorker[RetryPolicy, Senders, FetcherMetrics]):
    """One worker's fetcher logic. Every handler of a recording runs under the recording's lock (both agents and the
    sweep) and inside the supervisor: whatever it raises ends in a retry, then a dead letter and a failure."""

    retries_topic = FETCHER_RETRIES.name

    def __init__(
        self,
        *,
        fetcher: TranscriptFetcher,
        publisher: Publisher,
        metrics: FetcherMetrics | None = None,
        pause_after_send: float = 0.0,
        **core: Unpack[WorkerCore[RetryPolicy, Senders]],
    ) -> None:
        self.fetcher = fetcher
        self.publisher = publisher
        self.pause_after_send = pause_after_send
        super().__init__(metrics=metrics or fetcher.metrics, **core)

    # --- the Table ------------------------------------------------------------------------------------------------

    def pending_retries(self, key: str, value: Mapping[str, Any]) -> Iterator[PendingRetry]:
        return scheduled_retries(key, value)

    def load(self, recording_id: str) -> RecordingDoc:
        return RecordingDoc.from_table(recording_id, self.table.get(recording_id))

    def get(self, recording_id: str, transcript_id: str) -> TranscriptState | None:
        return self.load(recording_id).transcripts.get(transcript_id)

    def save(self, recording_id: str, state: TranscriptState) -> None:
        value = self.table.get(recording_id) or {}
        doc = self.load(recording_id)
        doc.transcripts[state.transcript_id] = state
        self.table.put(recording_id, {**value, **doc.to_table()})

    # --- events in ------------------------------------------------------------------------------------------------

    def route(self, inbound: Inbound) -> Routed:
        webhook = self._parse(inbound)
        if webhook is None:
            return None
        assert webhook.recording_id is not None
        return webhook.recording_id, lambda: self._handle(inbound, webhook)

    async def _handle(self, inbound: Inbound, webhook: WebhookEvent) -> None:
        if webhook.name == "deleted":
            await self._on_deleted(webhook)
        else:
            await self._on_done(inbound, webhook)

    def _parse(self, inbound: Inbound) -> WebhookEvent | None:
        """The event, or None when it is not the fetcher's (transcript.failed and the rest are the transcriber's)."""
        try:
            webhook = parse_webhook_event(inbound.value)
        except InvalidRecallPayload as invalid:
            raise PoisonMessage(str(invalid)) from None
        self.metrics.events.labels(event_type=webhook.event).inc()
        if webhook.family != "transcript" or webhook.name not in ("done", "deleted"):
            return None
        if webhook.transcript_id is None or webhook.recording_id is None:
            raise PoisonMessage(f"{webhook.event} carries no transcript or recording id")
        return webhook

    async def _on_done(self, inbound: Inbound, webhook: WebhookEvent) -> None:
        recording_id, transcript_id = webhook.recording_id, webhook.transcript_id
        assert recording_id is not None and transcript_id is not None
        state = self.get(recording_id, transcript_id)
        if not needs_work(state):
            assert state is not None
            if state.status is Status.READY:
                self.metrics.duplicates.labels(via="table").inc()
                self.save(recording_id, state.model_copy(update={"duplicates": state.duplicates + 1}))
            _log.info(
                "duplicate transcript.done: nothing to do", transcript_id=transcript_id, status=state.status.value
            )
            return
        working = start_work(state, webhook, inbound, self.clock())
        self.save(recording_id, working)
        await self.attempt(recording_id, working)

    async def _on_deleted(self, webhook: WebhookEvent) -> None:
        recording_id, transcript_id = webhook.recording_id, webhook.transcript_id
        assert recording_id is not None and transcript_id is not None
        state = self.get(recording_id, transcript_id)
        if state is not None and state.status in (Status.RETRY_SCHEDULED, Status.BLOCKED, Status.FETCHING):
            await self._gone(recording_id, state, "transcript.deleted")

    async def handle_retry(self, due: RetryDue) -> None:
        state = self.get(due.recording_id, due.target)
        if not due_retry(state, due.sequence):
            return
        assert state is not None
        working = state.model_copy(update={"status": Status.FETCHING, "updated_at": self.clock()})
        self.save(due.recording_id, working)
        await self.attempt(due.recording_id, working)

    # --- one attempt ----------------------------------------------------------------------------------------------

    async def attempt(self, recording_id: str, state: TranscriptState) -> None:
        job = Job(
            recording_id=recording_id,
            transcript_id=state.transcript_id,
            bot_id=state.bot_id,
            completed_at=state.completed_at,
            recording_metadata=dict(state.recording_metadata),
            transcript_metadata=dict(state.transcript_metadata),
        )
        try:
            claim = await self.publisher.claim(job)  # before the store is read: fences older replicas (fence.py)
            fetched = await self.fetcher.fetch(job)
            self.faults.maybe_raise("fetcher.attempt")
            published = await self.publisher.publish(job, fetched, claim=claim, traceparent=state.traceparent)
        except Gone as gone:
            _log.info("transcript is gone at Recall; nothing to announce", transcript_id=job.transcript_id)
            await self._gone(recording_id, state, str(gone))
            return
        except Rejected as rejected:
            await self._reject(recording_id, state, str(rejected))
            return
        except RetryLater as failure:
            await self._retry_later(recording_id, state, failure)
            return
        if self.pause_after_send:
            _log.warning("fault injection: pausing after the announcement", transcript_id=state.transcript_id)
            await asyncio.sleep(self.pause_after_send)
        self._ready(recording_id, state, published)

    def _ready(self, recording_id: str, state: TranscriptState, published: Published) -> None:
        event, announcement = published.event, published.announcement
        self.save(
            recording_id,
            ended(state, Status.READY, None, self.clock()).model_copy(
                update={
                    "manifest_uri": self.fetcher.store.uri(published.manifest_key),
                    "ready_event_id": announcement.event_id,
                    "ready_partition": announcement.partition,
                    "ready_offset": published.offset,
                    "word_count": event.word_count,
                }
            ),
        )
        if published.sent:
            self.metrics.ready.inc()
            self.metrics.end_to_end_seconds.observe(max(0.0, (event.ready_at - event.completed_at).total_seconds()))
            _log.info(
                "transcripts.ready emitted",
                recording_id=recording_id,
                transcript_id=state.transcript_id,
                words=event.word_count,
                partition=announcement.partition,
                offset=published.offset,
            )
        else:
            self.metrics.duplicates.labels(via="topic").inc()

    async def _gone(self, recording_id: str, state: TranscriptState, reason: str) -> None:
        """The transcriber handed the recording over at ``transcript.done``: a transcript gone at Recall must end it
        (``transcripts.failed``, reason ``transcript_gone``), in the same outbox order as a rejection, with no dead
        letter (there is nothing an operator could replay)."""
        gone = self._store_failure(recording_id, state, Status.GONE, reason, FailureReason.TRANSCRIPT_GONE)
        self.metrics.gone.inc()
        await self._finish_failure(recording_id, gone)

    async def _reject(
        self,
        recording_id: str,
        state: TranscriptState,
        reason: str,
        failure: FailureReason = FailureReason.TRANSCRIPT_REJECTED,
    ) -> None:
        """Outbox order: REJECTED is stored (with its source, not yet announced), then the source goes to the DLQ,
        then ``transcripts.failed`` is sent, and only then does the state say so (and drop the source)."""
        rejected = self._store_failure(recording_id, state, Status.REJECTED, reason, failure)
        await self._finish_failure(recording_id, rejected)

    def _store_failure(
        self, recording_id: str, state: TranscriptState, status: Status, reason: str, failure: FailureReason
    ) -> TranscriptState:
        """The outbox's first half: the failed state stored with its ``transcripts.failed`` not yet emitted."""
        failed = state.model_copy(
            update={
                "status": status,
                "retry": None,
                "last_error": reason,
                "failure_reason": failure,
                "failed_emitted": False,
                "updated_at": self.clock(),
            }
        )
        self.save(recording_id, failed)
        return failed

    async def _finish_failure(self, recording_id: str, state: TranscriptState) -> None:
        """The outbox's second half for a REJECTED or GONE transcript stored "not yet emitted": the source to the DLQ
        (rejections only), ``transcripts.failed`` sent, and only then the state marked emitted."""
        if state.status is Status.REJECTED:
            await self._dead_letter_source(recording_id, state, state.last_error or "rejected")
        doc = self.load(recording_id)
        announced = any(other.status is Status.READY for other in doc.transcripts.values())
        if not announced:  # a recording with a transcript announced ready has ended; no failure on top
            await self.emit_failed(transcript_failed(recording_id, [state], state.failure_reason, self.clock()))
        self.save(recording_id, ended(state, state.status, state.last_error, self.clock()))

    async def _retry_later(self, recording_id: str, state: TranscriptState, failure: RetryLater) -> None:
        decision = on_retryable_failure(
            state,
            kind=failure.kind,
            reason=str(failure),
            retry_after=failure.retry_after,
            policy=self.policy,
            now=self.clock(),
            rng=self.rng,
        )
        if decision.dead_letter:
            await self._reject(recording_id, state, decision.state.last_error or str(failure))
            return
        self.save(recording_id, decision.state)
        self.metrics.retries.labels(kind=failure.kind.value).inc()
        if decision.operator_problem:
            self.metrics.operator_problem(failure.status)
            _log.error(
                "Recall refuses our credentials or billing: fix RECALL_API_KEY or the account; retrying slowly",
                transcript_id=state.transcript_id,
                error=str(failure),
            )
        else:
            _log.warning(
                "transcript fetch failed; retry scheduled",
                transcript_id=state.transcript_id,
                attempts=decision.state.attempts,
                due_at=decision.state.retry.due_at.isoformat() if decision.state.retry else None,
                error=str(failure),
            )

    async def give_up(self, recording_id: str, reason: str) -> None:
        """The supervisor's bound is reached: every transcript of the recording still in work is rejected with
        ``internal_error`` and the recording fails (unless one of its transcripts was announced ready)."""
        doc = self.load(recording_id)
        working = [state for state in doc.transcripts.values() if state.status not in ENDED]
        if not doc.transcripts:
            await self.emit_failed(transcript_failed(recording_id, [], FailureReason.INTERNAL_ERROR, self.clock()))
            return
        for state in working:
            # The parked events are in the DLQ already: no second copy of the source.
            dropped = state.model_copy(update={"source": None, "last_error": reason})
            await self._reject(recording_id, dropped, reason, FailureReason.INTERNAL_ERROR)

    # --- the sweep: deadlines, unsent failures, retention ---------------------------------------------------------

    def sweep_work(self, key: str, value: Mapping[str, Any], now: datetime) -> Work | None:
        doc = RecordingDoc.from_table(key, value)
        if expired(doc, now, self.limits.retention_seconds):
            return partial(self._expire, key)
        due = [
            state
            for state in doc.transcripts.values()
            if _unsent(state) or past_deadline(state, now, self.limits.deadline_seconds)
        ]
        return partial(self._sweep_transcripts, key, due, now) if due else None

    async def _expire(self, recording_id: str) -> None:
        self.table.delete(recording_id)
        self.metrics.expired.inc()

    async def _sweep_transcripts(self, recording_id: str, due: list[TranscriptState], now: datetime) -> None:
        """Each transcript :meth:`sweep_work` found: an unsent failure is sent, one past its deadline resumed."""
        for state in due:
            if _unsent(state):
                await self._finish_failure(recording_id, state)
            else:
                _log.warning("transcript left fetching past its deadline; resuming", transcript_id=state.transcript_id)
                self.save(recording_id, resume_now(state, now))

    # --- events out -----------------------------------------------------------------------------------------------

    async def emit_failed(self, failed: TranscriptFailed) -> None:
        await self.senders.failed(failed)
        self.metrics.failed.labels(reason=failed.reason.value).inc()

    async def _dead_letter_source(self, recording_id: str, state: TranscriptState, reason: str) -> None:
        if state.source is not None:
            await self.to_dlq(state.source.inbound(recording_id), reason)
