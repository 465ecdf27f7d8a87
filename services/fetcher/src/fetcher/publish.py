"""The one publish step after a fetch: build ``TranscriptReady``, record where it will go (the announcement, taken
with the claim before the fetch read the store), write the manifest (the stored transcript's commit point), then send
the event in a transaction of the claim's lease (:mod:`fetcher.fence`) and wait for the commit.

A transcript found complete in the store from an earlier attempt is only announced: :class:`fetcher.announce.Announcer`
looks for its event in the topic first, so a crash between the send and the Table's "ready" never sends it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aiokafka.errors import KafkaError

from fetcher.announce import Claim
from fetcher.fetch import AlreadyStored, Fetched, Job, RetryLater
from fetcher.state import attempt_number
from pipeline_common.contracts import TranscriptReady
from pipeline_common.logging import get_logger
from pipeline_common.store import (
    Announcement,
    Manifest,
    StoreError,
    TranscriptKeys,
    TranscriptStore,
    write_manifest,
)

_log = get_logger("fetcher.publish")


class Announcements(Protocol):
    """What the publish step needs of :class:`fetcher.announce.Announcer`."""

    async def claim(self, recording_id: str, transcript_id: str) -> Claim: ...

    async def announce(
        self, manifest: Manifest, *, fresh: bool, claim: Claim, traceparent: str | None = None
    ) -> tuple[int, bool]: ...


@dataclass(frozen=True)
class Published:
    manifest: Manifest
    offset: int
    sent: bool  # False: found in the topic already (sent before a restart)

    @property
    def event(self) -> TranscriptReady:
        assert self.manifest.event is not None
        return self.manifest.event

    @property
    def manifest_key(self) -> str:
        return TranscriptKeys(self.manifest.recording_id, self.manifest.transcript_id).manifest

    @property
    def announcement(self) -> Announcement:
        assert self.manifest.announcement is not None
        return self.manifest.announcement


def ready_event(job: Job, fetched: Fetched, now: datetime) -> TranscriptReady:
    artifact, analysis, objects = fetched.artifact, fetched.analysis, fetched.objects
    transcript_metadata = dict(job.transcript_metadata) or artifact.metadata_dict
    return TranscriptReady(
        recording_id=job.recording_id,
        transcript_id=job.transcript_id,
        bot_id=job.bot_id or artifact.bot_id,
        provider=artifact.provider_name,
        attempt=attempt_number(transcript_metadata),
        language_codes=analysis.language_codes,
        participants=analysis.participants,
        word_count=analysis.word_count,
        unnamed_word_count=analysis.unnamed_word_count,
        speech_duration_seconds=analysis.speech_duration_seconds,
        raw=objects["raw"],
        readable=objects["readable"],
        renditions={name: objects[name] for name in ("txt", "vtt", "srt")},
        provider_data=objects.get("provider_data"),
        recording_metadata=dict(job.recording_metadata)
        or (artifact.recording.metadata or {} if artifact.recording else {}),
        transcript_metadata=transcript_metadata,
        completed_at=job.completed_at or (artifact.status.updated_at or now),
        ready_at=now,
    )


@dataclass(kw_only=True)
class Publisher:
    store: TranscriptStore
    announcer: Announcements
    clock: Callable[[], datetime]
    pause_before_send: float = 0.0

    async def claim(self, job: Job) -> Claim:
        """Before the store is read: the lease that fences older holders of the transcript, and the floor."""
        try:
            return await self.announcer.claim(job.recording_id, job.transcript_id)
        except (KafkaError, OSError, RuntimeError, TimeoutError) as error:
            raise RetryLater(f"kafka: {type(error).__name__}: {error}") from None

    async def publish(
        self, job: Job, fetched: Fetched | AlreadyStored, *, claim: Claim, traceparent: str | None
    ) -> Published:
        try:
            if isinstance(fetched, AlreadyStored):
                manifest, fresh = fetched.manifest, False
            else:
                manifest, fresh = await self._commit(job, fetched, claim), True
            if self.pause_before_send:
                # Fault injection for the crash tests only: a window between the manifest and the send.
                _log.warning("fault injection: pausing before the announcement", transcript_id=job.transcript_id)
                await asyncio.sleep(self.pause_before_send)
            offset, sent = await self.announcer.announce(manifest, fresh=fresh, claim=claim, traceparent=traceparent)
        except StoreError as error:
            raise RetryLater(f"store: {error}") from None
        except (KafkaError, OSError, RuntimeError, TimeoutError) as error:
            raise RetryLater(f"kafka: {type(error).__name__}: {error}") from None
        return Published(manifest, offset, sent)

    async def _commit(self, job: Job, fetched: Fetched, claim: Claim) -> Manifest:
        event = ready_event(job, fetched, self.clock())
        announcement = claim.announcement
        manifest = Manifest(
            recording_id=job.recording_id,
            transcript_id=job.transcript_id,
            objects=fetched.objects,
            stored_at=event.ready_at,
            event=event,
            announcement=announcement,
        )
        await write_manifest(self.store, manifest)
        _log.debug("transcript stored", transcript_id=job.transcript_id, manifest=fetched.keys.manifest)
        return manifest
