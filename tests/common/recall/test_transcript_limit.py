"""Issue 14 item 8: at Recall's transcript limit, optionally delete our own failed/old transcripts and go on."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline_common.recall.errors import RecallTranscriptLimitReached
from pipeline_common.settings import RecallApiSettings
from tests.support.recall_sim import RunningSim, run_recall_sim, sim_settings

pytestmark = pytest.mark.integration

RECALL = {"recallai_async": {"language_code": "auto"}}


def ours(recording_id: str, attempt: int) -> dict[str, str]:
    return {"pipeline": "recall-pipeline", "pipeline_attempt": str(attempt), "recording_id": recording_id}


async def fill(sim: RunningSim, recording_id: str, transcripts: list[tuple[dict[str, Any] | None, str]]) -> list[str]:
    ids = []
    async with sim.client() as recall:
        for metadata, status in transcripts:
            created = await recall.create_transcript(recording_id, RECALL, metadata=metadata)
            await sim.admin.finish_transcript(created.id, status)
            ids.append(created.id)
    return ids


def test_the_setting_is_off_by_default() -> None:
    assert RecallApiSettings().recall_delete_own_transcripts_at_limit is False


async def test_off_the_limit_fails_the_create_as_before() -> None:
    with run_recall_sim(sim_settings(recall_sim_transcript_limit=2)) as sim:
        recording = (await sim.admin.create_recording())["id"]
        await fill(sim, recording, [(ours(recording, 1), "failed"), (ours(recording, 2), "done")])
        async with sim.client() as recall:
            with pytest.raises(RecallTranscriptLimitReached):
                await recall.create_transcript(recording, RECALL, metadata=ours(recording, 3), idempotency_key="k3")


async def test_on_our_failed_transcript_is_deleted_and_the_create_goes_on() -> None:
    with run_recall_sim(sim_settings(recall_sim_transcript_limit=2)) as sim:
        recording = (await sim.admin.create_recording())["id"]
        failed, done = await fill(sim, recording, [(ours(recording, 1), "failed"), (ours(recording, 2), "done")])
        async with sim.client(delete_own_transcripts_at_limit=True) as recall:
            created = await recall.create_transcript(
                recording, RECALL, metadata=ours(recording, 3), idempotency_key="k3"
            )
        live = {t["id"]: t["deleted"] for t in await sim.admin.transcripts(recording_id=recording)}
        assert live[failed] is True and live[done] is False and live[created.id] is False


async def test_on_a_transcript_we_did_not_create_is_never_deleted() -> None:
    with run_recall_sim(sim_settings(recall_sim_transcript_limit=2)) as sim:
        recording = (await sim.admin.create_recording())["id"]
        foreign_meta = {"pipeline": "someone-else", "recording_id": recording}
        foreign, other = await fill(sim, recording, [(foreign_meta, "failed"), ({"team": "sales"}, "done")])
        async with sim.client(delete_own_transcripts_at_limit=True) as recall:
            with pytest.raises(RecallTranscriptLimitReached):
                await recall.create_transcript(recording, RECALL, metadata=ours(recording, 1), idempotency_key="k1")
        assert not any(t["deleted"] for t in await sim.admin.transcripts(recording_id=recording))
        assert {foreign, other} <= {t["id"] for t in await sim.admin.transcripts(recording_id=recording)}


@pytest.mark.unit
def test_which_transcripts_may_go() -> None:
    from pipeline_common.recall.limit import transcripts_to_delete
    from pipeline_common.recall.models import TranscriptArtifact

    def artifact(tid: str, code: str, created: str, metadata: dict[str, str]) -> TranscriptArtifact:
        return TranscriptArtifact.model_validate(
            {"id": tid, "created_at": created, "status": {"code": code}, "metadata": metadata, "data": {}}
        )

    mine = ours("r", 1)
    done_new = artifact("done-new", "done", "2026-01-02T00:00:00Z", mine)
    done_old = artifact("done-old", "done", "2026-01-01T00:00:00Z", mine)
    processing = artifact("busy", "processing", "2025-01-01T00:00:00Z", mine)
    foreign = artifact("foreign", "failed", "2025-01-01T00:00:00Z", {"pipeline": "other", "recording_id": "r"})
    other_recording = artifact("other-r", "failed", "2025-01-01T00:00:00Z", ours("r2", 1))
    everything = [done_new, done_old, processing, foreign, other_recording]
    assert transcripts_to_delete(everything, mine, "r") == ["done-old"]
    failed = artifact("failed", "failed", "2026-01-03T00:00:00Z", mine)
    assert transcripts_to_delete([*everything, failed], mine, "r") == ["failed"]
    assert transcripts_to_delete(everything, {"team": "x"}, "r") == []  # a create that is not ours names nothing
