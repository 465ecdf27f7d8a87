"""The fetcher's per-event logic driven in-process: a dict for the Table, a fake Recall, a real file store, a fake
announcer and recording senders. Each test pins one of the worker-core defects (issue 12) that it failed on before.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fetcher import fetch as fetch_module
from fetcher.announce import Claim
from fetcher.budget import ByteBudget
from fetcher.fetch import TranscriptFetcher
from fetcher.metrics import FetcherMetrics
from fetcher.publish import Publisher
from fetcher.worker import Fetcher, Senders
from pipeline_common.contracts import FailureReason
from pipeline_common.recall.errors import RecallNotFound, RecallServerError
from pipeline_common.recall.models import TranscriptArtifact
from pipeline_common.store import Announcement, FileStore, Manifest
from pipeline_common.topics import TRANSCRIPT_EVENTS
from pipeline_common.worker import Inbound, WorkerLimits
from recall_sim.generator import TranscriptSpec, generate_transcript
from tests.fetcher.support import RETRY_POLICY
from tests.support.worker_core import START, StreamOnlyTable, WorkerHarness
from tests.transcriber.fakes import webhook

pytestmark = pytest.mark.unit

REC, TID = "rec-fetch-1", "tr-fetch-1"
LIMITS = WorkerLimits(max_internal_errors=3, deadline_seconds=900, retention_seconds=3600, give_up_seconds=7200)
TRANSCRIPT = TranscriptSpec(words=30, speakers=2)
POLICY = RETRY_POLICY


class Killed(BaseException):
    """The process dies (SIGKILL): nothing after this point runs."""


@dataclass
class FakeRecall:
    body: bytes = field(default_factory=lambda: generate_transcript("k", TRANSCRIPT, default_words=30))
    retrieves: int = 0
    download_error: BaseException | None = None
    retrieve_error: BaseException | None = None

    async def retrieve_transcript(self, transcript_id: str) -> TranscriptArtifact:
        self.retrieves += 1
        if self.retrieve_error is not None:
            raise self.retrieve_error
        return TranscriptArtifact.model_validate(
            {
                "id": transcript_id,
                "recording": {"id": REC, "metadata": {}},
                "status": {"code": "done", "sub_code": None, "updated_at": START.isoformat()},
                "data": {"download_url": f"https://files.recall.ai/{transcript_id}.json"},
                "metadata": {},
                "provider": {"recallai_async": {}},
            }
        )

    async def stream_download(self, url: str, max_bytes: int) -> AsyncIterator[bytes]:
        if self.download_error is not None:
            raise self.download_error
        yield self.body


@dataclass
class FakeAnnouncer:
    sent: list[Manifest] = field(default_factory=list)

    async def claim(self, recording_id: str, transcript_id: str) -> Claim:
        announcement = Announcement(
            topic="transcripts.ready", partition=0, floor_offset=0, event_id=f"ready:{transcript_id}"
        )
        return Claim(announcement)

    async def announce(
        self, manifest: Manifest, *, fresh: bool, claim: Claim, traceparent: str | None = None
    ) -> tuple[int, bool]:
        if not fresh and any(m.transcript_id == manifest.transcript_id for m in self.sent):
            return 0, False
        self.sent.append(manifest)
        return len(self.sent) - 1, True


class FullDisk(FileStore):
    """A file store whose spool fills up (the measured failure: OSError 28 from the spool, outside the store's
    own error handling) until ``full`` is cleared."""

    full = False

    def spool_dir(self) -> Path:
        if self.full:
            raise OSError(28, "No space left on device")
        return super().spool_dir()


class Harness(WorkerHarness[Fetcher]):
    def __init__(self, tmp_path: Path, table: dict[str, Any] | None = None) -> None:
        super().__init__(table)
        self.recall = FakeRecall()
        self.store = FullDisk(tmp_path / "store")
        self.announcer = FakeAnnouncer()
        self.worker = self.restart()

    def restart(self) -> Fetcher:
        metrics = FetcherMetrics()
        fetcher = TranscriptFetcher(
            recall=self.recall,
            store=self.store,
            metrics=metrics,
            max_bytes=10 * 1024 * 1024,
            expired_url_retries=1,
            store_provider_data=False,
            analysis_budget=ByteBudget(64 * 1024 * 1024),
        )
        self.worker = Fetcher(
            table=self.table,
            fetcher=fetcher,
            publisher=Publisher(store=self.store, announcer=self.announcer, clock=self.clock),
            policy=POLICY,
            senders=Senders(
                retry=self.out.send_retry, dead_letter=self.out.send_dead_letter, failed=self.out.send_failed
            ),
            limits=LIMITS,
            metrics=metrics,
            clock=self.clock,
            rng=random.Random(3),
        )
        return self.worker

    def done(self, event: str = "transcript.done") -> Inbound:
        body = webhook(event, REC, transcript_id=TID, pipeline="recall-pipeline", pipeline_attempt="1")
        return self.offsets.inbound(TRANSCRIPT_EVENTS.name, REC, body)

    def status(self) -> str | None:
        state = self.worker.get(REC, TID)
        return None if state is None else state.status.value


# --- 1. an unforeseen exception (a full disk) never loses the event -------------------------------------------------


async def test_a_full_disk_parks_the_transcript_until_space_comes_back(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.store.full = True
    await h.worker.on_event(h.done())
    assert h.table[REC]["supervision"]["parked"]
    assert "No space left on device" in h.table[REC]["supervision"]["last_error"]
    h.store.full = False
    assert await h.wake_up() == 1
    assert h.status() == "ready"
    assert len(h.announcer.sent) == 1 and "supervision" not in h.table[REC]


async def test_a_disk_that_stays_full_ends_in_a_dead_letter_and_a_failure(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.store.full = True
    done = h.done()
    await h.worker.on_event(done)
    while await h.wake_up():
        pass
    ((dead, reason),) = h.out.dead
    assert dead.value == done.value and "internal errors" in reason
    (failed,) = h.out.failed
    assert failed.recording_id == REC and failed.reason is FailureReason.INTERNAL_ERROR
    assert h.announcer.sent == []


# --- 9. a dead-lettered transcript ends its recording ---------------------------------------------------------------


async def test_a_dead_lettered_transcript_publishes_transcripts_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.body = b'{"not": "a transcript"}'
    done = h.done()
    await h.worker.on_event(done)
    ((dead, _reason),) = h.out.dead
    assert dead.value == done.value
    (failed,) = h.out.failed
    assert failed.reason is FailureReason.TRANSCRIPT_REJECTED
    assert [(a.transcript_id, a.number) for a in failed.attempts] == [(TID, 1)]
    assert h.status() == "rejected"


async def test_a_failure_lost_in_a_crash_is_emitted_by_the_sweep(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.body = b"[[[["
    h.out.failed_errors = [Killed()]
    with pytest.raises(Killed):
        await h.worker.on_event(h.done())
    h.restart()
    await h.sweep()
    assert [f.reason for f in h.out.failed] == [FailureReason.TRANSCRIPT_REJECTED]
    await h.sweep()
    assert len(h.out.failed) == 1


# --- a transcript gone at Recall ends its recording too (the transcriber handed it over at transcript.done) --------


async def test_a_transcript_gone_at_recall_publishes_transcripts_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.retrieve_error = RecallNotFound("404: no such transcript", status=404)
    await h.worker.on_event(h.done())
    assert h.status() == "gone"
    (failed,) = h.out.failed
    assert failed.recording_id == REC and failed.reason.value == "transcript_gone"
    assert [(a.transcript_id, a.number) for a in failed.attempts] == [(TID, 1)]
    assert h.out.dead == []  # nothing an operator could replay: no dead letter
    assert h.announcer.sent == []


async def test_a_transcript_deleted_while_waiting_for_its_retry_publishes_transcripts_failed(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.download_error = RecallServerError("503 from the file host", status=503)
    await h.worker.on_event(h.done())
    assert h.status() == "retry_scheduled" and h.out.failed == []
    await h.worker.on_event(h.done("transcript.deleted"))
    assert h.status() == "gone"
    assert [f.reason.value for f in h.out.failed] == ["transcript_gone"]
    assert await h.wake_up() == 0  # the waiting retry is cancelled


async def test_a_gone_failure_lost_in_a_crash_is_emitted_by_the_sweep(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.retrieve_error = RecallNotFound("404: no such transcript", status=404)
    h.out.failed_errors = [Killed()]
    with pytest.raises(Killed):
        await h.worker.on_event(h.done())
    h.restart()
    h.clock.advance(LIMITS.retention_seconds + 1)
    await h.sweep()  # emitted, not expired: an unsent terminal event keeps the recording
    assert [f.reason.value for f in h.out.failed] == ["transcript_gone"]
    assert REC in h.table
    await h.sweep()
    assert len(h.out.failed) == 1


# --- 4. deadlines ---------------------------------------------------------------------------------------------------


async def test_a_transcript_left_fetching_is_resumed_after_the_deadline(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.recall.download_error = Killed()
    with pytest.raises(Killed):
        await h.worker.on_event(h.done())  # dies mid-download; the offset was committed (lost event)
    h.recall.download_error = None
    h.restart()
    h.clock.advance(LIMITS.deadline_seconds - 1)
    await h.sweep()
    assert h.status() == "fetching"
    h.clock.advance(2)
    await h.sweep()
    assert await h.wake_up(after=1) == 1
    assert h.status() == "ready"


# --- 5. bounded state -----------------------------------------------------------------------------------------------


async def test_a_finished_recording_keeps_no_source_event_and_is_removed_after_the_retention(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    await h.worker.on_event(h.done())
    assert h.status() == "ready"
    stored = h.table[REC]["transcripts"][TID]
    assert stored["source"] is None and stored["traceparent"] is None
    assert len(json.dumps(h.table[REC])) < 2000
    await h.sweep_after(LIMITS.retention_seconds - 1)
    assert REC in h.table
    await h.sweep_after(2)
    assert REC not in h.table


class CountingTable(StreamOnlyTable):
    scans = 0

    def items(self) -> Any:
        self.scans += 1
        return super().items()


async def test_the_retry_timer_reads_the_due_index_not_the_table(tmp_path: Path) -> None:
    h = Harness(tmp_path, CountingTable())
    h.recall.download_error = RecallServerError("503 from the file host", status=503)
    await h.worker.on_event(h.done())
    assert h.status() == "retry_scheduled"
    h.recall.download_error = None
    assert await h.wake_up() == 1
    assert h.table.scans == 0  # type: ignore[attr-defined]
    assert h.status() == "ready"


# --- the analysis budget (fetcher/budget.py) ------------------------------------------------------------------------


async def test_a_transcript_is_validated_and_rendered_holding_its_size_of_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = Harness(tmp_path)
    budget = h.worker.fetcher.analysis_budget
    held: list[int] = []
    analyse_and_render = fetch_module._analyse_and_render

    def observed(spool: Path) -> Any:
        held.append(budget.in_use)
        return analyse_and_render(spool)

    monkeypatch.setattr(fetch_module, "_analyse_and_render", observed)
    await h.worker.on_event(h.done())
    assert h.status() == "ready"
    assert held == [len(h.recall.body)]
    assert budget.in_use == 0
