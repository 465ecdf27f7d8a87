"""The simulator's state and behaviour, independent of HTTP: recordings, transcripts and their lifecycle,
idempotency, rate limits, fault decisions, signed download URLs, and the log of calls received."""

from __future__ import annotations

import asyncio
import hmac
import random
import secrets
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from pipeline_common.logging import get_logger
from recall_sim import signing
from recall_sim.config import Endpoint, EndpointFault, Faults, RuntimeConfig
from recall_sim.generator import TranscriptSpec, generate_transcript, provider_data
from recall_sim.records import TRANSCRIPT_RETENTION, Call, Clock, IdempotencyEntry, Recording, SimTranscript
from recall_sim.webhooks import WebhookDispatcher, iso

log = get_logger("recall_sim")

MAX_CALLS_KEPT: Final = 200_000
CACHE_BYTES: Final = 256 * 1024 * 1024


@dataclass
class Simulator:
    config: RuntimeConfig
    faults: Faults
    api_key: str
    clock: Clock = field(default_factory=Clock)
    recordings: dict[str, Recording] = field(default_factory=dict)
    transcripts: dict[str, SimTranscript] = field(default_factory=dict)
    calls: deque[Call] = field(default_factory=lambda: deque(maxlen=MAX_CALLS_KEPT))
    idempotency: dict[tuple[str, str], IdempotencyEntry] = field(default_factory=dict)
    windows: dict[str, deque[float]] = field(default_factory=dict)
    url_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    call_seq: int = 0
    # recording id -> the webhook event types to lose for it (None: every event), see loses_webhook.
    lost_webhooks: dict[str, frozenset[str] | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(f"recall-sim-faults:{self.config.seed}")  # noqa: S311 - test data
        self.webhooks = WebhookDispatcher(lambda: self.config, lambda: self.faults, self.rng)
        self.webhooks.lose = self.loses_webhook
        self._tasks: set[asyncio.Task[None]] = set()
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_bytes = 0
        # recording id -> its transcripts' ids: a create checks the recording's count without a scan of them all.
        self._of_recording: dict[str, list[str]] = {}
        self._cache_lock = asyncio.Lock()

    async def start(self) -> None:
        await self.webhooks.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.webhooks.stop()

    def reset(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.webhooks.reset()
        self.recordings.clear()
        self.transcripts.clear()
        self._of_recording.clear()
        self.calls.clear()
        self.lost_webhooks.clear()
        self.idempotency.clear()
        self.windows.clear()
        self._cache.clear()
        self._cache_bytes = 0
        self.clock.offset = 0.0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- calls, auth, faults, limits ---------------------------------------------------------------------------------

    def record_call(self, method: str, path: str, endpoint: Endpoint) -> Call:
        self.call_seq += 1
        call = Call(seq=self.call_seq, at=iso(self.clock.now()), method=method, path=path, endpoint=endpoint.value)
        self.calls.append(call)
        return call

    def authorized(self, header: str | None) -> bool:
        if not header:
            return False
        token = header.strip()
        if token.lower().startswith("token "):
            token = token[6:].strip()
        return hmac.compare_digest(token.encode(), self.api_key.encode())

    def fault(self, endpoint: Endpoint) -> EndpointFault:
        return self.faults.endpoints.get(endpoint, EndpointFault())

    def injected_error(self, endpoint: Endpoint) -> EndpointFault | None:
        return self._fault_fires(endpoint, "fail_next", "error_rate")

    def should_drop(self, endpoint: Endpoint) -> bool:
        return self._fault_fires(endpoint, "drop_next", "drop_rate") is not None

    def should_garble(self, endpoint: Endpoint) -> bool:
        return self._fault_fires(endpoint, "garble_next", "garble_rate") is not None

    def _fault_fires(self, endpoint: Endpoint, countdown: str, rate: str) -> EndpointFault | None:
        """The endpoint's fault if it fires now: one of the next ``countdown`` calls (used up), else by ``rate``."""
        fault = self.faults.endpoints.get(endpoint)
        if fault is None:
            return None
        left: int = getattr(fault, countdown)
        if left > 0:
            setattr(fault, countdown, left - 1)
            return fault
        chance: float = getattr(fault, rate)
        return fault if chance and self.rng.random() < chance else None

    def rate_limited(self, bucket: str, limit: int | None) -> float | None:
        """None if allowed (and counted); else the seconds until a slot frees up."""
        if limit is None:
            return None
        now = self.clock.time()
        window = self.config.rate_window_seconds
        times = self.windows.setdefault(bucket, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            return max(0.0, times[0] + window - now)
        times.append(now)
        return None

    def idempotency_lookup(self, key: str, path: str) -> IdempotencyEntry | None:
        entry = self.idempotency.get((key, path))
        if entry is None:
            return None
        if not entry.in_flight and self.clock.time() - entry.created > self.config.idempotency_ttl_seconds:
            del self.idempotency[(key, path)]
            return None
        return entry

    # --- recordings ------------------------------------------------------------------------------------------------

    def create_recording(
        self,
        *,
        recording_id: str | None,
        bot_id: str | None,
        with_bot: bool,
        metadata: dict[str, Any],
        bot_metadata: dict[str, Any],
        status: str,
        sub_code: str | None,
        spec: TranscriptSpec,
        webhooks: bool,
    ) -> Recording:
        now = self.clock.now()
        recording = Recording(
            id=recording_id or str(uuid.uuid4()),
            bot_id=(bot_id or str(uuid.uuid4())) if with_bot else None,
            metadata=metadata,
            bot_metadata=bot_metadata,
            status=status,
            sub_code=sub_code,
            created_at=now - timedelta(minutes=31),
            started_at=now - timedelta(minutes=30),
            completed_at=now if status == "done" else None,
            updated_at=now,
            spec=spec,
        )
        self.recordings[recording.id] = recording
        if webhooks:
            if recording.bot_id and self.config.bot_events:
                self.emit_legacy_bot_event(recording)
            self.emit_recording_event(recording)
        return recording

    def emit_legacy_bot_event(self, recording: Recording) -> None:
        """Recall's v1.10 bot status change: the bot by ``data.bot_id``, its status in ``data.status``."""
        body = {
            "event": "bot.status_change",
            "data": {
                "bot_id": recording.bot_id,
                "status": {"code": "done", "sub_code": None, "message": None, "created_at": iso(recording.updated_at)},
            },
        }
        self.webhooks.send(body, recording_id=recording.id, bot_id=recording.bot_id)

    def set_recording_status(self, recording: Recording, status: str, sub_code: str | None) -> None:
        recording.status, recording.sub_code = status, sub_code
        recording.updated_at = self.clock.now()
        if status == "done":
            recording.completed_at = recording.updated_at
        self.emit_recording_event(recording)

    def emit_recording_event(self, recording: Recording) -> None:
        body = {
            "event": f"recording.{recording.status}",
            "data": {
                "data": {
                    "code": recording.status,
                    "sub_code": recording.sub_code,
                    "updated_at": iso(recording.updated_at),
                },
                "recording": {"id": recording.id, "metadata": recording.metadata},
                "bot": {"id": recording.bot_id, "metadata": recording.bot_metadata} if recording.bot_id else None,
            },
        }
        self.webhooks.send(body, recording_id=recording.id, bot_id=recording.bot_id)

    # --- transcripts -----------------------------------------------------------------------------------------------

    def active_transcripts(self, recording_id: str) -> list[SimTranscript]:
        ids = self._of_recording.get(recording_id, ())
        found = (self.transcripts.get(transcript_id) for transcript_id in ids)
        return [t for t in found if t is not None and t.recording_id == recording_id and not t.deleted]

    def create_transcript(
        self,
        recording: Recording,
        provider: dict[str, Any],
        provider_name: str,
        diarization: dict[str, Any] | None,
        metadata: dict[str, Any],
        idempotency_key: str | None,
    ) -> SimTranscript:
        now = self.clock.now()
        transcript = SimTranscript(
            id=str(uuid.uuid4()),
            seq=len(self.transcripts) + 1,
            recording_id=recording.id,
            provider=provider,
            provider_name=provider_name,
            diarization=diarization,
            metadata=metadata,
            status="processing",
            sub_code=None,
            created_at=now,
            updated_at=now,
            idempotency_key=idempotency_key,
        )
        self.transcripts[transcript.id] = transcript
        self._of_recording.setdefault(recording.id, []).append(transcript.id)
        if self.config.processing_webhooks:
            self.emit_transcript_event(transcript)
        delay = self.config.transcript_delay_seconds
        if recording.spec.processing_seconds is not None:
            delay = recording.spec.processing_seconds
        if delay is not None:
            self._spawn(self._finish_later(transcript, delay))
        return transcript

    async def _finish_later(self, transcript: SimTranscript, delay: float) -> None:
        await asyncio.sleep(delay)
        self.finish_transcript(transcript)

    def finish_transcript(
        self, transcript: SimTranscript, status: str | None = None, sub_code: str | None = None
    ) -> bool:
        """processing -> done/failed (as asked, else as the provider faults decide). False if already finished."""
        if transcript.status != "processing" or transcript.deleted:
            return False
        if status is None:
            failure = self.faults.provider_failures.get(transcript.provider_name)
            recording = self.recordings.get(transcript.recording_id)
            own_failure = recording.spec.failing_providers.get(transcript.provider_name) if recording else None
            if own_failure is not None:
                status, sub_code = "failed", own_failure
            elif failure is not None and (failure.rate >= 1 or self.rng.random() < failure.rate):
                status, sub_code = "failed", failure.sub_code
            else:
                status = "done"
        transcript.status = status
        transcript.sub_code = sub_code if status == "failed" else None
        transcript.updated_at = self.clock.now()
        log.info("transcript finished", transcript_id=transcript.id, status=status, sub_code=transcript.sub_code)
        self.emit_transcript_event(transcript)
        return True

    def delete_transcript(self, transcript: SimTranscript) -> None:
        transcript.deleted = True
        transcript.status = "deleted"
        transcript.updated_at = self.clock.now()
        self.emit_transcript_event(transcript)

    def emit_transcript_event(self, transcript: SimTranscript) -> None:
        recording = self.recordings[transcript.recording_id]
        body = {
            "event": f"transcript.{transcript.status}",
            "data": {
                "data": {
                    "code": transcript.status,
                    "sub_code": transcript.sub_code,
                    "updated_at": iso(transcript.updated_at),
                },
                "transcript": {"id": transcript.id, "metadata": transcript.metadata},
                "recording": {"id": recording.id, "metadata": recording.metadata},
                "bot": {"id": recording.bot_id, "metadata": recording.bot_metadata} if recording.bot_id else None,
            },
        }
        self.webhooks.send(body, recording_id=recording.id, transcript_id=transcript.id, bot_id=recording.bot_id)

    def transcript_json(self, transcript: SimTranscript, base_url: str) -> dict[str, Any]:
        recording = self.recordings[transcript.recording_id]
        data: dict[str, Any] = {"download_url": None, "provider_data_download_url": None}
        if transcript.status == "done":
            data["download_url"] = self.signed_url(base_url, "transcripts", transcript.id)
            # Recall exposes no raw provider data for its own provider or with separate-stream diarization.
            separate = bool((transcript.diarization or {}).get("use_separate_streams_when_available"))
            if transcript.provider_name != "recallai_async" and not separate:
                data["provider_data_download_url"] = self.signed_url(base_url, "provider-data", transcript.id)
        return {
            "id": transcript.id,
            "recording": {
                "id": recording.id,
                "metadata": recording.metadata,
                "source": {"bot": {"id": recording.bot_id}} if recording.bot_id else {},
            },
            "created_at": iso(transcript.created_at),
            "expires_at": iso(transcript.created_at + TRANSCRIPT_RETENTION),
            "status": {
                "code": transcript.status,
                "sub_code": transcript.sub_code,
                "updated_at": iso(transcript.updated_at),
            },
            "data": data,
            "diarization": transcript.diarization,
            "metadata": transcript.metadata,
            "provider": transcript.provider,
        }

    # --- downloads -------------------------------------------------------------------------------------------------

    def signed_url(self, base_url: str, kind: str, transcript_id: str) -> str:
        expires = int(self.clock.time() + self.config.download_url_ttl_seconds)
        signature = signing.signature(self.url_key, kind, transcript_id, expires)
        base = (self.config.public_url or base_url).rstrip("/")
        if signing.redirects(self.config.seed, self.config.download_redirect_ratio, transcript_id):
            # Recall's download URLs can live on the regional API host and redirect to storage.
            return f"{base}/api/v1/download/{kind}/{transcript_id}?token={expires}.{signature}"
        return self.storage_url(base, kind, transcript_id, expires, signature)

    storage_url = staticmethod(signing.storage_url)

    def check_signed(self, kind: str, transcript_id: str, expires: str | None, signature: str | None) -> str | None:
        """None if the URL is valid now; else S3's error code for it."""
        return signing.check(self.url_key, self.clock.time(), kind, transcript_id, expires, signature)

    async def transcript_bytes(self, transcript: SimTranscript) -> bytes:
        recording = self.recordings[transcript.recording_id]
        key = f"{self.config.seed}:{recording.id}"
        async with self._cache_lock:
            cached = self._cache.get(key)
            if cached is not None:
                self._cache.move_to_end(key)
                return cached
            empty_draw = random.Random(f"recall-sim-empty:{key}").random()  # noqa: S311
            data = await asyncio.to_thread(
                generate_transcript,
                key,
                recording.spec,
                default_words=self.config.transcript_words,
                default_bytes=self.config.transcript_bytes,
                empty=empty_draw < self.config.empty_transcript_ratio,
                started_at=recording.started_at,
            )
            self._cache[key] = data
            self._cache_bytes += len(data)
            while self._cache_bytes > CACHE_BYTES and len(self._cache) > 1:
                self._cache_bytes -= len(self._cache.popitem(last=False)[1])
            return data

    def provider_bytes(self, transcript: SimTranscript) -> bytes:
        return provider_data(transcript.recording_id, transcript.provider_name, transcript.id)

    # --- lost webhooks (reconciliation tests) -------------------------------------------------------------------------

    def loses_webhook(self, event: str, recording_id: str | None) -> bool:
        """Whether this event is never delivered: chosen recordings (all or some event types), or a share of
        recordings drawn per recording (``faults.webhooks.lose_recording_rate``), so all of one's events go."""
        if recording_id is None:
            return False
        if recording_id in self.lost_webhooks:
            events = self.lost_webhooks[recording_id]
            return events is None or event in events
        rate = self.faults.webhooks.lose_recording_rate
        if not rate:
            return False  # seeding a Random per webhook costs more than the rest of sending it
        draw = random.Random(f"recall-sim-lose:{self.config.seed}:{recording_id}").random()  # noqa: S311
        return draw < rate
