"""The simulator's state and behaviour, independent of HTTP: recordings, transcripts and their lifecycle,
idempotency, rate limits, fault decisions, signed download URLs, and the log of calls received."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import random
import secrets
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from pipeline_common.logging import get_logger
from recall_sim.config import Endpoint, EndpointFault, Faults, RuntimeConfig
from recall_sim.generator import TranscriptSpec, generate_transcript, provider_data
from recall_sim.webhooks import WebhookDispatcher, iso

log = get_logger("recall_sim")

TRANSCRIPT_RETENTION: Final = timedelta(days=7)
MAX_CALLS_KEPT: Final = 200_000
CACHE_BYTES: Final = 256 * 1024 * 1024


class Clock:
    """Wall-clock time that tests can move forward (URL expiry, idempotency TTL, rate windows)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def time(self) -> float:
        return time.time() + self.offset

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), tz=UTC)


@dataclass
class Recording:
    id: str
    bot_id: str | None
    metadata: dict[str, Any]
    bot_metadata: dict[str, Any]
    status: str
    sub_code: str | None
    created_at: datetime
    started_at: datetime
    completed_at: datetime | None
    updated_at: datetime
    spec: TranscriptSpec

    def to_dict(self, latest_transcript: dict[str, Any] | None = None) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "completed_at": iso(self.completed_at) if self.completed_at else None,
            "expires_at": iso(self.created_at + TRANSCRIPT_RETENTION),
            "status": {"code": self.status, "sub_code": self.sub_code, "updated_at": iso(self.updated_at)},
            "media_shortcuts": {"transcript": latest_transcript},
            "metadata": self.metadata,
            "bot": {"id": self.bot_id, "metadata": self.bot_metadata} if self.bot_id else None,
        }


@dataclass
class SimTranscript:
    id: str
    seq: int
    recording_id: str
    provider: dict[str, Any]
    provider_name: str
    diarization: dict[str, Any] | None
    metadata: dict[str, Any]
    status: str
    sub_code: str | None
    created_at: datetime
    updated_at: datetime
    idempotency_key: str | None
    deleted: bool = False


@dataclass
class Call:
    seq: int
    at: str
    method: str
    path: str
    endpoint: str
    status: int | None = None
    outcome: str = "pending"
    recording_id: str | None = None
    transcript_id: str | None = None
    bot_id: str | None = None
    idempotency_key: str | None = None
    provider: str | None = None
    authorization_sent: bool = False
    latency_ms: int = 0


@dataclass
class IdempotencyEntry:
    in_flight: bool
    created: float
    status: int = 0
    body: bytes = b""


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
        self.calls.clear()
        self.lost_webhooks.clear()
        self.idempotency.clear()
        self.windows.clear()
        self._cache.clear()
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
        fault = self.faults.endpoints.get(endpoint)
        if fault is None:
            return None
        if fault.fail_next > 0:
            fault.fail_next -= 1
            return fault
        if fault.error_rate and self.rng.random() < fault.error_rate:
            return fault
        return None

    def should_drop(self, endpoint: Endpoint) -> bool:
        fault = self.faults.endpoints.get(endpoint)
        if fault is None:
            return False
        if fault.drop_next > 0:
            fault.drop_next -= 1
            return True
        return bool(fault.drop_rate and self.rng.random() < fault.drop_rate)

    def should_garble(self, endpoint: Endpoint) -> bool:
        fault = self.faults.endpoints.get(endpoint)
        if fault is None:
            return False
        if fault.garble_next > 0:
            fault.garble_next -= 1
            return True
        return bool(fault.garble_rate and self.rng.random() < fault.garble_rate)

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
        return [t for t in self.transcripts.values() if t.recording_id == recording_id and not t.deleted]

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

    def _signature(self, kind: str, transcript_id: str, expires: int) -> str:
        message = f"{kind}:{transcript_id}:{expires}".encode()
        return base64.urlsafe_b64encode(hmac.new(self.url_key, message, hashlib.sha256).digest()).decode().rstrip("=")

    def signed_url(self, base_url: str, kind: str, transcript_id: str) -> str:
        expires = int(self.clock.time() + self.config.download_url_ttl_seconds)
        signature = self._signature(kind, transcript_id, expires)
        base = (self.config.public_url or base_url).rstrip("/")
        if self._redirects(transcript_id):
            # Recall's download URLs can live on the regional API host and redirect to storage.
            return f"{base}/api/v1/download/{kind}/{transcript_id}?token={expires}.{signature}"
        return self.storage_url(base, kind, transcript_id, expires, signature)

    @staticmethod
    def storage_url(base: str, kind: str, transcript_id: str, expires: int | str, signature: str) -> str:
        return f"{base}/files/{kind}/{transcript_id}.json?X-Sim-Expires={expires}&X-Sim-Signature={signature}"

    def _redirects(self, transcript_id: str) -> bool:
        ratio = self.config.download_redirect_ratio
        if ratio <= 0:
            return False
        # Deterministic per transcript: every retrieve of one transcript gives the same kind of URL.
        digest = hashlib.sha256(f"{self.config.seed}:{transcript_id}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < ratio

    def check_signed(self, kind: str, transcript_id: str, expires: str | None, signature: str | None) -> str | None:
        """None if the URL is valid now; else S3's error code for it."""
        if not expires or not signature or not expires.isdigit() or len(expires) > 12:
            return "AccessDenied"
        if not hmac.compare_digest(self._signature(kind, transcript_id, int(expires)).encode(), signature.encode()):
            return "SignatureDoesNotMatch"
        if self.clock.time() > int(expires):
            return "ExpiredToken"
        return None

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
            while sum(len(item) for item in self._cache.values()) > CACHE_BYTES and len(self._cache) > 1:
                self._cache.popitem(last=False)
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
        draw = random.Random(f"recall-sim-lose:{self.config.seed}:{recording_id}").random()  # noqa: S311
        return bool(rate) and draw < rate
