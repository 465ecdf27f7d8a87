"""``make chaos``: a ledger run. N recordings through the real processes while a fault schedule runs, then a full
reconciliation from Kafka and from the simulator's records (Recall's side of the ledger), then a fuzzing pass on
the ingest endpoint. Exit 0 only when every check holds; the ledger is written to ``var/chaos/ledger-<time>.json``.

Faults (each on by default, each switchable):

- ``--no-kill``             SIGKILL of ingest, transcriber and fetcher at random moments (``--kills`` each), each
                            restarted by the harness and waited for until ready;
- ``--no-broker-restart``   one restart of the Kafka broker (stop, start);
- ``--no-api-faults``       the simulator answers Create/Retrieve/download with 429s, 5xx, and drops responses
                            (processed, then the connection closed), in phases;
- ``--no-webhook-chaos``    duplicate and out-of-order webhook deliveries;
- ``--no-provider-outage``  the primary provider fails every transcript for a window (the chain falls back);
- ``--no-fuzz``             skip the "bad input at scale" pass on ingest (hypothesis on raw bytes and headers).

What the ledger checks:

- every recording ended exactly once (one ``transcripts.ready`` or one ``transcripts.failed``), as planned;
- every ``transcripts.ready`` points at stored objects whose sha256 and size match, and the raw transcript is the
  bytes Recall serves;
- creates per recording (transcripts at Recall) never exceed the chain length nor 10, and no attempt was paid twice
  (one transcript per (recording, Idempotency-Key));
- every webhook Recall delivered with a 2xx is on its topic (``ce_id`` = webhook id, same bytes); none with a
  non-2xx final state was lost (Recall's retries brought it in);
- nothing in the dead-letter queues; the consumers caught up;
- the time to drain after the last fault.

    python scripts/chaos.py [--recordings 500] [--seed N] [--no-kill ...] [--fuzz-examples 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import logging
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import demo
import stack

from pipeline_common.cloudevents import header_value
from pipeline_common.contracts import TranscriptReady
from pipeline_common.store import TranscriptStore, open_store
from pipeline_common.topics import (
    BOT_EVENTS,
    FETCHER_RETRIES,
    OTHER_EVENTS,
    RECORDING_EVENTS,
    TRANSCRIBER_RETRIES,
    TRANSCRIPT_EVENTS,
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
    dlq_topic,
)
from pipeline_common.webhooks import sign_webhook

console = demo.console
PRIMARY, FALLBACK = demo.PRIMARY, demo.FALLBACK
CHAIN = [{PRIMARY: {"language_code": "auto"}}, {FALLBACK: {"model": "nova-3", "language": "multi"}}]
RECALL_LIMIT = 10
RECALL_TOPICS = {
    "recording": RECORDING_EVENTS.name,
    "transcript": TRANSCRIPT_EVENTS.name,
    "bot": BOT_EVENTS.name,
}
INGEST_TOPICS = (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, BOT_EVENTS.name, OTHER_EVENTS.name)
DLQS = (dlq_topic("transcriber").name, dlq_topic("fetcher").name)
#: What each consumer group reads (and must have caught up on before the ledger is drawn).
GROUPS = {
    "transcriber": (RECORDING_EVENTS.name, TRANSCRIPT_EVENTS.name, TRANSCRIBER_RETRIES.name),
    "fetcher": (TRANSCRIPT_EVENTS.name, FETCHER_RETRIES.name),
}
KILLABLE = ("ingest", "transcriber", "fetcher")
# The simulator is Recall: it is never killed (its records are the other half of the ledger).


def log(message: str) -> None:
    console.print(f"[dim]chaos[/] {message}", highlight=False)


# --- options -----------------------------------------------------------------------------------------------------


@dataclass
class Options:
    recordings: int = 500
    seed: int = 0
    feed_seconds: float | None = None  # default: recordings / 8, at least 15 s
    kills: int = 3  # per service
    kill_services: tuple[str, ...] = KILLABLE
    kill: bool = True
    broker_restart: bool = True
    api_faults: bool = True
    webhook_chaos: bool = True
    provider_outage: bool = True
    fuzz: bool = True
    fuzz_examples: int = 2000
    time_scale: float = 0.01
    transcript_delay: float = 0.3
    session_timeout: float = 10.0
    drain_timeout: float = 900.0
    stall_timeout: float = 180.0
    name: str = "chaos"
    ledger_dir: Path = stack.ROOT / "var" / "chaos"
    keep: bool = True  # keep var/<name>/ (logs, broker data, transcripts) after the run

    @property
    def feed(self) -> float:
        return self.feed_seconds if self.feed_seconds is not None else max(15.0, self.recordings / 8)


def parse_args(argv: list[str] | None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recordings", type=int, default=500)
    parser.add_argument("--seed", type=int, default=None, help="fault times, plan order (default: random, printed)")
    parser.add_argument("--feed-seconds", type=float, default=None, help="spread the recordings over this long")
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs of each service")
    parser.add_argument(
        "--kill-services", default=",".join(KILLABLE), help="comma-separated: which services get killed"
    )
    for name, what in (
        ("kill", "SIGKILL the services"),
        ("broker-restart", "restart the broker once"),
        ("api-faults", "429/5xx/dropped responses from Recall"),
        ("webhook-chaos", "duplicate and out-of-order webhooks"),
        ("provider-outage", "the primary provider fails every transcript for a while"),
        ("fuzz", "fuzz the ingest endpoint afterwards"),
    ):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"do not {what}")
    parser.add_argument("--fuzz-examples", type=int, default=2000)
    parser.add_argument("--time-scale", type=float, default=0.01, help="Recall's webhook retry schedule, scaled")
    parser.add_argument("--transcript-delay", type=float, default=0.3, help="Recall's processing time (seconds)")
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=10.0,
        help="consumer session timeout: how soon a dead worker's partitions move (seconds)",
    )
    parser.add_argument("--drain-timeout", type=float, default=900.0, help="give up waiting after the faults")
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=180.0,
        help="give up when Recall has nothing pending and no recording ended for this long",
    )
    parser.add_argument("--name", default="chaos", help="the stack's directory under var/")
    parser.add_argument("--ledger-dir", type=Path, default=stack.ROOT / "var" / "chaos")
    parser.add_argument("--clean", action="store_true", help="remove var/<name>/ (logs, data) after a clean run")
    args = parser.parse_args(argv)
    services = tuple(s.strip() for s in args.kill_services.split(",") if s.strip())
    unknown = set(services) - set(KILLABLE)
    if unknown:
        parser.error(f"--kill-services: unknown {', '.join(sorted(unknown))} (choose from {', '.join(KILLABLE)})")
    if args.recordings < 1:
        parser.error("--recordings must be at least 1")
    return Options(
        recordings=args.recordings,
        seed=args.seed if args.seed is not None else random.SystemRandom().randrange(1, 2**31),
        feed_seconds=args.feed_seconds,
        kills=args.kills,
        kill_services=services,
        kill=not args.no_kill and args.kills > 0 and bool(services),
        broker_restart=not args.no_broker_restart,
        api_faults=not args.no_api_faults,
        webhook_chaos=not args.no_webhook_chaos,
        provider_outage=not args.no_provider_outage,
        fuzz=not args.no_fuzz and args.fuzz_examples > 0,
        fuzz_examples=args.fuzz_examples,
        time_scale=args.time_scale,
        transcript_delay=args.transcript_delay,
        session_timeout=args.session_timeout,
        drain_timeout=args.drain_timeout,
        stall_timeout=args.stall_timeout,
        name=args.name,
        ledger_dir=args.ledger_dir,
        keep=not args.clean,
    )


# --- the ledger --------------------------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Ledger:
    checks: list[Check] = field(default_factory=list)
    sections: dict[str, Any] = field(default_factory=dict)

    def check(self, name: str, ok: bool, detail: str) -> None:
        self.checks.append(Check(name, ok, detail))

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [{"check": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            **self.sections,
        }


def sample(items: Iterable[Any], limit: int = 20) -> list[Any]:
    return list(items)[:limit]


# --- Kafka reading -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    ce_id: str | None


async def end_offsets(bootstrap: str, topics: Iterable[str]) -> dict[TopicPartition, int]:
    partitions = await all_partitions(bootstrap, topics)
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        return dict(await consumer.end_offsets(partitions))
    finally:
        await stop_consumer(consumer)


async def all_partitions(bootstrap: str, topics: Iterable[str]) -> list[TopicPartition]:
    """The partitions of those of ``topics`` that exist, as the cluster describes them."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15_000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [topic for topic in dict.fromkeys(topics) if topic in existing]
        described: Any = await admin.describe_topics(wanted) if wanted else []
    finally:
        await admin.close()
    return sorted(
        TopicPartition(item["topic"], partition["partition"])
        for item in described
        for partition in item.get("partitions") or ()
    )


async def stop_consumer(consumer: AIOKafkaConsumer) -> None:
    # aiokafka cancels a task it started in start(); if that task never ran, stop() raises CancelledError.
    await asyncio.sleep(0)
    await consumer.stop()


async def read_topics(
    bootstrap: str, topics: Iterable[str], *, start: dict[TopicPartition, int] | None = None
) -> list[Record]:
    """Every record of ``topics`` (from ``start``, else the beginning) up to their end offsets now."""
    records: list[Record] = []
    partitions = await all_partitions(bootstrap, topics)
    if not partitions:
        return records
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_partition_fetch_bytes=4 << 20
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets(partitions)
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, (start or {}).get(tp, 0))
        pending = {tp for tp in partitions if ends[tp] > (start or {}).get(tp, 0)}
        deadline = time.monotonic() + 120
        while pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"could not read {sorted(str(tp) for tp in pending)} to their end in 120s")
            batch = await consumer.getmany(*pending, timeout_ms=1000, max_records=5000)
            for tp, items in batch.items():
                for item in items:
                    if item.offset < ends[tp]:
                        ce_id = header_value(list(item.headers or ()), "ce_id")
                        records.append(
                            Record(
                                item.topic,
                                item.partition,
                                item.offset,
                                item.key,
                                item.value or b"",
                                ce_id.decode("utf-8", "replace") if ce_id is not None else None,
                            )
                        )
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return records
    finally:
        await stop_consumer(consumer)


async def committed_offsets(bootstrap: str, group: str) -> dict[str, int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {f"{tp.topic}:{tp.partition}": meta.offset for tp, meta in committed.items()}


async def group_lag(bootstrap: str) -> dict[str, int]:
    """Messages each consumer group has not committed yet, over the topics it reads."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        ends = await end_offsets(bootstrap, {topic for topics in GROUPS.values() for topic in topics})
        lag: dict[str, int] = {}
        for group, topics in GROUPS.items():
            committed = await admin.list_consumer_group_offsets(group)
            lag[group] = sum(
                max(0, end - (committed[tp].offset if tp in committed and committed[tp].offset >= 0 else 0))
                for tp, end in ends.items()
                if tp.topic in topics
            )
        return lag
    finally:
        await admin.close()


# --- the run -----------------------------------------------------------------------------------------------------


class HarnessError(Exception):
    pass


def blocking(function: Callable[..., Any], *args: Any) -> Awaitable[Any]:
    """Run one of stack's blocking helpers in a thread; its SystemExit becomes an ordinary error."""

    def call() -> Any:
        try:
            return function(*args)
        except SystemExit as exit_:
            raise HarnessError(str(exit_)) from None

    return asyncio.to_thread(call)


@dataclass
class FaultEvent:
    at: float  # seconds since the feed started
    kind: str
    target: str
    detail: str = ""
    until: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "at_s": round(self.at, 2),
            "kind": self.kind,
            "target": self.target,
            "until_s": round(self.until, 2) if self.until is not None else None,
            "detail": self.detail,
        }


class Chaos:
    def __init__(self, profile: stack.Profile, processes: list[stack.Process], options: Options) -> None:
        self.profile = profile
        self.processes = {process.name: process for process in processes}
        self.options = options
        self.rng = random.Random(options.seed)  # noqa: S311 - a replayable schedule, not cryptography
        self.sim_url = f"http://127.0.0.1:{profile.sim_port}"
        self.ingest_url = f"http://127.0.0.1:{profile.ingest_port}"
        self.live = demo.Demo(profile)
        self.events: list[FaultEvent] = []
        self.started = 0.0
        self.fed = 0
        self.fed_at: float | None = None
        self.faults_over_at: float | None = None
        self.outage_on = False
        self.api_phase: int | None = None
        self.webhooks_on = False
        self.broker_down = False
        self.errors: list[str] = []
        self.deadline = 0.0
        self.delivery_ids: set[str] = set()
        self.progressed = asyncio.Event()  # set by the collector whenever outcomes arrive
        self.final = demo.Demo(profile)

    def now(self) -> float:
        return time.monotonic() - self.started

    # ----- plan and feed

    def plan(self) -> None:
        n = self.options.recordings
        doomed = max(1, round(n * 0.02)) if n >= 3 else 0
        empty = max(1, round(n * 0.02)) if n >= 3 else 0
        fallback = max(1, n // 5) if n >= 4 else 0
        kinds = ["doomed"] * doomed + ["empty"] * empty + ["fallback"] * fallback
        kinds += ["primary"] * (n - len(kinds))
        self.rng.shuffle(kinds)
        for kind in kinds:
            recording_id = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
            self.live.planned[recording_id] = demo.Planned(recording_id, kind)

    async def feed(self, sim: httpx.AsyncClient) -> None:
        items = list(self.live.planned.values())
        spacing = self.options.feed / len(items)
        for index, item in enumerate(items):
            delay = self.started + index * spacing - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            item.created_at = time.monotonic()
            response = await sim.post(
                "/admin/recordings",
                json={"id": item.recording_id, "metadata": {"chaos": item.kind}, "transcript": item.transcript_spec},
            )
            response.raise_for_status()
            self.fed += 1
        self.fed_at = self.now()
        log(f"all {len(items)} recordings created at Recall ({self.fed_at:.1f}s)")

    async def collect(self, stop: asyncio.Event) -> None:
        """Consume transcripts.ready/failed like a downstream service would, for progress and finish times."""
        consumer = AIOKafkaConsumer(
            TRANSCRIPTS_READY.name,
            TRANSCRIPTS_FAILED.name,
            bootstrap_servers=self.profile.bootstrap,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            metadata_max_age_ms=5000,
        )
        await consumer.start()
        try:
            while not stop.is_set():
                batch = await consumer.getmany(timeout_ms=500)
                for records in batch.values():
                    for record in records:
                        self.live.take(record.topic, record.value or b"")
                if batch:
                    self.progressed.set()
        finally:
            await stop_consumer(consumer)

    def ended(self) -> int:
        return sum(1 for item in self.live.planned.values() if item.finished_at is not None)

    async def progress(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 10)
            if stop.is_set():
                return
            ready = sum(1 for item in self.live.planned.values() if item.ready is not None)
            ended = self.ended()
            active = [
                name
                for name, on in (
                    ("api-faults", self.api_phase is not None),
                    ("webhook-chaos", self.webhooks_on),
                    ("provider-outage", self.outage_on),
                    ("broker-down", self.broker_down),
                )
                if on
            ]
            log(
                f"{self.now():6.1f}s  created {self.fed}/{len(self.live.planned)}  ended {ended} "
                f"(ready {ready}, failed {ended - ready})  faults so far {len(self.events)}"
                + (f"  active: {', '.join(active)}" if active else "")
            )

    # ----- faults

    def faults_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"endpoints": {}, "provider_failures": {}, "webhooks": {}}
        if self.api_phase is not None:
            # Each phase answers differently; every phase drops some responses (processed, answer lost).
            statuses = [(429, 503, 500), (503, 429, 502), (500, 502, 503)][self.api_phase % 3]
            body["endpoints"] = {
                "create_transcript": {
                    "error_rate": 0.15,
                    "status": statuses[0],
                    "retry_after": 1 if statuses[0] == 429 else None,
                    "drop_rate": 0.05,
                },
                "retrieve_transcript": {"error_rate": 0.1, "status": statuses[1], "drop_rate": 0.05},
                "download": {"error_rate": 0.1, "status": statuses[2]},
            }
        if self.outage_on:
            body["provider_failures"] = {PRIMARY: "provider_connection_failed"}
        if self.webhooks_on:
            body["webhooks"] = {"duplicate_rate": 0.2, "out_of_order_rate": 0.2, "out_of_order_delay_seconds": 1.5}
        return body

    async def apply_faults(self, sim: httpx.AsyncClient) -> None:
        response = await sim.put("/admin/faults", json=self.faults_body())
        response.raise_for_status()

    async def sleep_until(self, at: float) -> None:
        delay = self.started + at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)

    def progress_fraction(self) -> float:
        return self.ended() / max(1, len(self.live.planned))

    async def at_progress(self, fraction: float) -> None:
        """Wait until that share of the recordings has ended (so a fault lands while work is in flight, however fast
        or loaded the machine), or until the deadline (a stuck pipeline must not stall the schedule forever)."""
        while self.progress_fraction() < fraction and time.monotonic() < self.deadline:
            self.progressed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progressed.wait(), 1.0)

    def open_window(self, kind: str, target: str, detail: str) -> FaultEvent:
        event = FaultEvent(self.now(), kind, target, detail)
        self.events.append(event)
        return event

    async def fault_windows(
        self, sim: httpx.AsyncClient, discrete_done: asyncio.Event, feed_done: asyncio.Event
    ) -> None:
        """Webhook chaos and API faults from the start until the feed and every kill/restart are over (the API
        faults change their answers every few seconds); the provider outage from 25 % to 60 % of the recordings
        ended."""
        phase_seconds = 8.0
        api: FaultEvent | None = None
        webhooks: FaultEvent | None = None
        outage: FaultEvent | None = None
        outage_done = not self.options.provider_outage
        phase_started = 0.0
        if self.options.webhook_chaos:
            self.webhooks_on = True
            webhooks = self.open_window(
                "webhook-chaos", "recall_sim", "20% delivered twice, 20% held back 1.5s (overtaken by later ones)"
            )
        if self.options.api_faults:
            self.api_phase, phase_started = 0, self.now()
        await self.apply_faults(sim)
        while True:
            changed = False
            if self.api_phase is not None and (api is None or self.now() - phase_started >= phase_seconds):
                if api is not None:
                    api.until = self.now()
                    self.api_phase += 1
                statuses = ["429/503/500", "503/429/502", "500/502/503"][self.api_phase % 3]
                api = self.open_window(
                    "api-faults",
                    "recall_sim",
                    f"create/retrieve/download answer {statuses} (15%/10%/10% of calls); 5% of creates and "
                    "retrieves processed but their answer dropped",
                )
                phase_started, changed = self.now(), True
            if not outage_done and outage is None and self.progress_fraction() >= 0.25:
                self.outage_on, changed = True, True
                outage = self.open_window(
                    "provider-outage", PRIMARY, f"{PRIMARY} fails every transcript (provider_connection_failed)"
                )
            finished = discrete_done.is_set() and feed_done.is_set()
            if outage is not None and not outage_done and (self.progress_fraction() >= 0.6 or finished):
                self.outage_on, outage_done, changed = False, True, True
                outage.until = self.now()
            if finished and (outage_done or time.monotonic() > self.deadline):
                self.api_phase, self.webhooks_on, self.outage_on = None, False, False
                await self.apply_faults(sim)
                for event in (api, webhooks, outage):
                    if event is not None and event.until is None:
                        event.until = self.now()
                return
            if changed:
                await self.apply_faults(sim)
            await asyncio.sleep(0.2)

    async def kill_and_restart(self, name: str, when: float) -> None:
        if name == "ingest":
            await self.sleep_until(when)  # ingest's work is the webhooks: a moment while Recall is sending them
        else:
            await self.at_progress(when)  # a consumer's work is the backlog: a point of the run's progress
        process = self.processes[name]
        pid = stack.running_pid(self.profile, name)
        if pid is None:
            raise HarnessError(f"{name} is not running when it should be killed")
        event = FaultEvent(self.now(), "sigkill", name)
        ended = self.ended()
        os.killpg(pid, signal.SIGKILL)
        if process.popen is not None:
            await asyncio.to_thread(process.popen.wait)
        stack.pid_file(self.profile, name).unlink(missing_ok=True)
        stack.start(self.profile, process)
        await blocking(stack.wait_ready, self.profile, [process], 300)
        event.until = self.now()
        event.detail = (
            f"pid {pid} at {ended}/{len(self.live.planned)} recordings ended; restarted and ready after "
            f"{event.until - event.at:.1f}s"
        )
        self.events.append(event)
        log(f"{event.at:6.1f}s  SIGKILL {name} ({event.detail})")

    async def killer(self, name: str, moments: list[float]) -> None:
        for when in moments:
            await self.kill_and_restart(name, when)

    async def restart_broker(self, fraction: float) -> None:
        await self.at_progress(fraction)
        event = FaultEvent(self.now(), "broker-restart", "kafka")
        ended = self.ended()
        self.broker_down = True
        log(f"{event.at:6.1f}s  stopping the broker")
        try:
            await blocking(stack.kafka, self.profile, "stop")
            stopped = self.now()
            await blocking(stack.kafka, self.profile, "start")
        finally:
            self.broker_down = False
        await blocking(stack.wait_ready, self.profile, [self.processes["ingest"]], 300)
        event.until = self.now()
        event.detail = (
            f"at {ended}/{len(self.live.planned)} recordings ended; stopped in {stopped - event.at:.1f}s; broker "
            f"and ingest ready after {event.until - event.at:.1f}s"
        )
        self.events.append(event)
        log(f"{event.until:6.1f}s  broker back ({event.detail})")

    def schedule(self) -> list[Awaitable[None]]:
        """The discrete faults: the consumers' kills and the broker restart each at a random point of the run's
        progress (share of recordings ended), ingest's kills at random moments of the feed."""
        tasks: list[Awaitable[None]] = []
        if self.options.kill:
            for name in self.options.kill_services:
                if name == "ingest":
                    moments = [self.rng.uniform(0.05, 0.9) * self.options.feed for _ in range(self.options.kills)]
                else:
                    moments = [self.rng.uniform(0.02, 0.85) for _ in range(self.options.kills)]
                tasks.append(self.killer(name, sorted(moments)))
        if self.options.broker_restart:
            tasks.append(self.restart_broker(self.rng.uniform(0.3, 0.6)))
        return tasks

    async def recall_state(self, sim: httpx.AsyncClient) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        deliveries = (await sim.get("/admin/deliveries", timeout=60)).json()
        transcripts = (await sim.get("/admin/transcripts", timeout=60)).json()
        return deliveries, transcripts

    async def drain(self, sim: httpx.AsyncClient) -> dict[str, Any]:
        """Wait until every recording ended, Recall has nothing pending and the consumers caught up."""
        deadline = time.monotonic() + self.options.drain_timeout
        last: dict[str, Any] = {}
        progress_at, progress = time.monotonic(), self.ended()
        while True:
            ended = self.ended()
            if ended != progress:
                progress_at, progress = time.monotonic(), ended
            lag: dict[str, int] = {}
            deliveries = (await sim.get("/admin/deliveries", params={"body": "false"}, timeout=60)).json()
            pending = sum(1 for d in deliveries if d["state"] == "pending")
            processing = -1
            if ended == len(self.live.planned) and not pending:
                transcripts = (await sim.get("/admin/transcripts", timeout=60)).json()
                processing = sum(1 for t in transcripts if t["status"]["code"] == "processing")
                if not processing:
                    with contextlib.suppress(Exception):
                        lag = await group_lag(self.profile.bootstrap)
            last = {"ended": ended, "deliveries_pending": pending, "transcripts_processing": processing, "lag": lag}
            if lag and not any(lag.values()):
                return {"quiescent": True, **last}
            if time.monotonic() > deadline:
                return {"quiescent": False, "gave_up": "drain timeout", **last}
            stalled = time.monotonic() - progress_at
            if not pending and processing <= 0 and stalled > self.options.stall_timeout:
                # Recall has nothing left to send and no recording has ended for a while: what is missing now is
                # not coming (the consumers' own retries back off for minutes at most).
                return {"quiescent": False, "gave_up": f"no recording ended for {stalled:.0f}s", **last}
            await asyncio.sleep(1.0)

    # ----- the whole run

    async def run(self) -> Ledger:
        self.plan()
        ledger = Ledger()
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=30, limits=limits) as sim:
            self.started = time.monotonic()
            collector = asyncio.create_task(self.collect(stop))
            reporter = asyncio.create_task(self.progress(stop))
            self.deadline = self.started + self.options.feed + self.options.drain_timeout / 2
            discrete_done, feed_done = asyncio.Event(), asyncio.Event()
            discrete = self.schedule()
            log(
                f"feeding {len(self.live.planned)} recordings over {self.options.feed:.0f}s; {len(discrete)} "
                f"discrete fault task(s) and the fault windows (seed {self.options.seed})"
            )

            async def all_of(tasks: list[Awaitable[None]], done: asyncio.Event) -> None:
                try:
                    for result in await asyncio.gather(*tasks, return_exceptions=True):
                        if isinstance(result, BaseException):
                            self.errors.append(f"{type(result).__name__}: {result}")
                            log(f"[red]harness error: {type(result).__name__}: {result}[/]")
                finally:
                    done.set()

            results = await asyncio.gather(
                all_of([self.feed(sim)], feed_done),
                all_of(discrete, discrete_done),
                self.fault_windows(sim, discrete_done, feed_done),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            # Whatever happened, clear every fault before drawing the ledger.
            self.api_phase, self.outage_on, self.webhooks_on = None, False, False
            with contextlib.suppress(httpx.HTTPError):
                await self.apply_faults(sim)
            self.faults_over_at = self.now()
            if failures:
                for failure in failures:
                    self.errors.append(f"{type(failure).__name__}: {failure}")
                    log(f"[red]harness error: {type(failure).__name__}: {failure}[/]")
            log(f"{self.faults_over_at:6.1f}s  last fault over; draining")
            drained = await self.drain(sim)
            drained_at = self.now()
            stop.set()
            await asyncio.gather(collector, reporter, return_exceptions=True)
            log(f"{drained_at:6.1f}s  drained: {drained}")
            try:
                await self.reconcile(ledger, sim, drained, drained_at)
            except Exception as error:  # keep what was checked; say the rest could not be
                ledger.check("reconciliation ran to the end", False, repr(error)[:500])
                log(f"[red]reconciliation failed: {error!r}[/]")
        if self.options.fuzz:
            try:
                fuzz_report = await fuzz_ingest(
                    self.ingest_url, self.profile.bootstrap, self.options, self.delivery_ids
                )
            except Exception as error:  # the reconciliation above stands; the fuzzing pass failed
                fuzz_report = {"requests": 0, "statuses": {}, "accepted": 0, "written": 0, "problems": [repr(error)]}
                log(f"[red]fuzzing pass failed: {error!r}[/]")
            ledger.sections["fuzz"] = fuzz_report
            ok = not fuzz_report["problems"]
            ledger.check(
                "fuzz: nothing unverified written, no unexpected 5xx",
                ok,
                f"{fuzz_report['requests']} requests, statuses {fuzz_report['statuses']}, "
                f"accepted {fuzz_report['accepted']} = new Kafka messages {fuzz_report['written']}"
                + ("" if ok else f"; problems: {fuzz_report['problems'][:5]}"),
            )
        ledger.check(
            "harness ran its schedule",
            not self.errors,
            "every fault carried out" if not self.errors else "; ".join(self.errors)[:500],
        )
        return ledger

    # ----- reconciliation

    async def reconcile(self, ledger: Ledger, sim: httpx.AsyncClient, drained: dict[str, Any], at: float) -> None:
        bootstrap = self.profile.bootstrap
        records = await read_topics(bootstrap, [*INGEST_TOPICS, TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name, *DLQS])
        by_topic: dict[str, list[Record]] = defaultdict(list)
        for record in records:
            by_topic[record.topic].append(record)
        deliveries, transcripts = await self.recall_state(sim)
        create_calls = (await sim.get("/admin/calls", params={"endpoint": "create_transcript"}, timeout=60)).json()

        self.check_outcomes(ledger, by_topic)
        await self.check_store(ledger, by_topic, transcripts)
        self.check_creates(ledger, transcripts, create_calls)
        self.check_webhooks(ledger, deliveries, by_topic)
        odd = [
            item.recording_id
            for item in self.final.planned.values()
            if item.ready_events + item.failed_events != 1 or self.expected(item)
        ]
        if odd:
            ledger.sections["trails"] = await self.trails(odd[:10], deliveries, transcripts, records)
        dlq = {topic: len(by_topic[topic]) for topic in DLQS}
        ledger.check("dead-letter queues empty", not any(dlq.values()), json.dumps(dlq))
        lag = drained.get("lag") or {}
        ledger.check(
            "drained: consumers caught up, Recall has nothing pending",
            bool(drained.get("quiescent")),
            json.dumps(drained),
        )
        finished = [item.finished_at for item in self.live.planned.values() if item.finished_at is not None]
        last_outcome = (max(finished) - self.started) if finished else None
        latencies = sorted(
            item.finished_at - item.created_at for item in self.live.planned.values() if item.finished_at is not None
        )
        assert self.faults_over_at is not None
        ledger.sections["timing"] = {
            "feed_seconds": round(self.options.feed, 1),
            "recordings_created_by_s": round(self.fed_at, 1) if self.fed_at is not None else None,
            "last_fault_over_at_s": round(self.faults_over_at, 1),
            "last_outcome_at_s": round(last_outcome, 1) if last_outcome is not None else None,
            "drained_at_s": round(at, 1),
            "drain_after_last_fault_s": round(max(0.0, (last_outcome or 0) - self.faults_over_at), 1),
            "quiescent_after_last_fault_s": round(at - self.faults_over_at, 1),
            "latency_s": {
                "p50": round(statistics.median(latencies), 2) if latencies else None,
                "p99": round(latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))], 2)
                if latencies
                else None,
                "max": round(latencies[-1], 2) if latencies else None,
            },
            "lag_at_end": lag,
        }
        ledger.sections["faults"] = [event.to_json() for event in sorted(self.events, key=lambda e: e.at)]

    async def trails(
        self,
        recording_ids: list[str],
        deliveries: list[dict[str, Any]],
        transcripts: list[dict[str, Any]],
        records: list[Record],
    ) -> dict[str, Any]:
        """Everything both sides know about a recording that did not end as it should: for the investigation."""
        try:
            committed = {group: await committed_offsets(self.profile.bootstrap, group) for group in GROUPS}
        except Exception as error:  # a trail is best effort
            committed = {"error": repr(error)}  # type: ignore[dict-item]
        trails: dict[str, Any] = {}
        async with httpx.AsyncClient(timeout=10) as client:
            for recording_id in recording_ids:
                states = {}
                for name, port in (
                    ("transcriber", self.profile.transcriber_port),
                    ("fetcher", self.profile.fetcher_port),
                ):
                    try:
                        response = await client.get(f"http://127.0.0.1:{port}/recordings/{recording_id}")
                        states[name] = response.json()
                    except (httpx.HTTPError, ValueError) as error:
                        states[name] = repr(error)
                trails[recording_id] = {
                    "kind": self.live.planned[recording_id].kind,
                    "recall_deliveries": [
                        {
                            "id": d["id"],
                            "event": d["event"],
                            "state": d["state"],
                            "held_back": d.get("held_back"),
                            "attempts": [
                                (a["status"] or a["error"], a["at"], a.get("duplicate")) for a in d["attempts"]
                            ],
                            "transcript_id": d.get("transcript_id"),
                        }
                        for d in deliveries
                        if d.get("recording_id") == recording_id
                    ],
                    "recall_transcripts": [
                        {
                            "id": t["id"],
                            "provider": next(iter(t["provider"]), None),
                            "status": t["status"],
                            "idempotency_key": t.get("idempotency_key"),
                        }
                        for t in transcripts
                        if t["recording"]["id"] == recording_id
                    ],
                    "kafka": [
                        {
                            "topic": r.topic,
                            "partition": r.partition,
                            "offset": r.offset,
                            "ce_id": r.ce_id,
                            "committed": {
                                group: offsets.get(f"{r.topic}:{r.partition}")
                                for group, offsets in committed.items()
                                if isinstance(offsets, dict)
                            },
                        }
                        for r in records
                        if (r.key or b"").decode("utf-8", "replace") == recording_id
                    ],
                    "service_state": states,
                }
        return trails

    def check_outcomes(self, ledger: Ledger, by_topic: dict[str, list[Record]]) -> None:
        final = self.final
        for item in self.live.planned.values():
            final.planned[item.recording_id] = demo.Planned(item.recording_id, item.kind)
        unknown: Counter[str] = Counter()
        ready_ids: dict[str, list[str | None]] = defaultdict(list)
        for topic in (TRANSCRIPTS_READY.name, TRANSCRIPTS_FAILED.name):
            for record in by_topic[topic]:
                key = (record.key or b"").decode("utf-8", "replace")
                if key not in final.planned:
                    unknown[topic] += 1
                    continue
                final.take(topic, record.value)
                ready_ids[key].append(record.ce_id)
        self.final = final
        lost = [item.recording_id for item in final.planned.values() if not item.ready_events + item.failed_events]
        duplicated = {
            item.recording_id: {
                "ready": item.ready_events,
                "failed": item.failed_events,
                "ce_ids": sorted({i or "" for i in ready_ids[item.recording_id]}),
            }
            for item in final.planned.values()
            if item.ready_events + item.failed_events > 1
        }
        wrong = {
            item.recording_id: problems
            for item in final.planned.values()
            if item.ready_events + item.failed_events == 1 and (problems := self.expected(item))
        }
        ready = sum(1 for item in final.planned.values() if item.ready_events)
        failed = sum(1 for item in final.planned.values() if item.failed_events and not item.ready_events)
        kinds = Counter(item.kind for item in final.planned.values())
        providers = Counter(item.ready.provider for item in final.planned.values() if item.ready is not None)
        ledger.sections["recordings"] = {
            "planned": len(final.planned),
            "by_kind": dict(kinds),
            "ready": ready,
            "failed": failed,
            "lost": len(lost),
            "duplicated": len(duplicated),
            "ready_by_provider": dict(providers),
            "events_for_unknown_recordings": dict(unknown),
            "lost_sample": sample(lost),
            "duplicated_sample": dict(sample(duplicated.items())),
            "unexpected_outcome_sample": dict(sample(wrong.items())),
        }
        ledger.check(
            "every recording ended exactly once",
            not lost and not duplicated and not unknown,
            f"{len(final.planned)} planned: {ready} ready + {failed} failed; lost {len(lost)}, "
            f"duplicated {len(duplicated)}, events for unknown recordings {sum(unknown.values())}",
        )
        ledger.check(
            "every recording ended as planned",
            not wrong,
            f"{len(wrong)} unexpected"
            + (f": {dict(sample(wrong.items(), 3))}" if wrong else "")
            + f" (kinds {dict(kinds)})",
        )

    def expected(self, item: demo.Planned) -> list[str]:
        if item.kind == "doomed":
            if item.failed is None:
                return ["expected transcripts.failed"]
            if item.failed.reason.value != "providers_exhausted" or len(item.failed.attempts) != len(CHAIN):
                return [f"expected providers_exhausted after {len(CHAIN)} attempts, got {item.failed.reason.value}"]
            return []
        if item.ready is None:
            return ["no transcripts.ready" + (f" (failed: {item.failed.reason.value})" if item.failed else "")]
        problems = []
        # Under the provider outage (or a retry storm), any recording may legitimately end on the fallback.
        allowed = {FALLBACK} if item.kind == "fallback" else {PRIMARY, FALLBACK}
        if not self.options.provider_outage and item.kind != "fallback":
            allowed = {PRIMARY}
        if item.ready.provider not in allowed:
            problems.append(f"provider {item.ready.provider}, expected one of {sorted(allowed)}")
        if item.kind == "empty" and item.ready.word_count != 0:
            problems.append("expected an empty transcript")
        if item.kind != "empty" and item.ready.word_count == 0:
            problems.append("expected words")
        return problems

    async def check_store(
        self, ledger: Ledger, by_topic: dict[str, list[Record]], transcripts: list[dict[str, Any]]
    ) -> None:
        store_url = self.processes["fetcher"].env["TRANSCRIPT_STORE_URL"]
        store = open_store(store_url)
        recall = {t["id"]: t for t in transcripts}
        checked = objects = 0
        mismatches: list[str] = []
        try:
            async with httpx.AsyncClient(
                base_url=self.sim_url, timeout=30, headers={"Authorization": f"Token {stack.DEV_API_KEY}"}
            ) as api:
                for record in by_topic[TRANSCRIPTS_READY.name]:
                    ready = TranscriptReady.model_validate_json(record.value)
                    checked += 1
                    stored = {"raw": ready.raw, "readable": ready.readable, **ready.renditions}
                    if ready.provider_data is not None:
                        stored["provider_data"] = ready.provider_data
                    raw_digest = None
                    for name, item in stored.items():
                        objects += 1
                        try:
                            data = await store.get_bytes(store_key(store, item.uri))
                        except Exception as error:
                            mismatches.append(f"{ready.recording_id} {name}: unreadable ({type(error).__name__})")
                            continue
                        digest = hashlib.sha256(data).hexdigest()
                        if name == "raw":
                            raw_digest = digest
                        if digest != item.sha256 or len(data) != item.size_bytes:
                            mismatches.append(f"{ready.recording_id} {name}: sha256/size differ from the event")
                    at_recall = recall.get(ready.transcript_id)
                    if at_recall is None or at_recall["recording"]["id"] != ready.recording_id:
                        mismatches.append(f"{ready.recording_id}: transcript {ready.transcript_id} unknown at Recall")
                        continue
                    if at_recall["status"]["code"] != "done":
                        mismatches.append(f"{ready.recording_id}: transcript is {at_recall['status']['code']}")
                    served = await recall_bytes(api, ready.transcript_id)
                    if served is None or hashlib.sha256(served).hexdigest() != raw_digest:
                        mismatches.append(f"{ready.recording_id}: stored raw transcript is not what Recall serves")
        finally:
            await store.close()
        ledger.sections["store"] = {
            "ready_events_checked": checked,
            "objects_checked": objects,
            "store": store_url,
            "mismatches": len(mismatches),
            "mismatch_sample": sample(mismatches),
        }
        ledger.check(
            "every transcripts.ready points at a stored transcript whose sha256 matches",
            not mismatches,
            f"{checked} events, {objects} objects re-hashed, raw compared with Recall's bytes; "
            f"{len(mismatches)} mismatches" + (f": {mismatches[:3]}" if mismatches else ""),
        )

    def check_creates(self, ledger: Ledger, transcripts: list[dict[str, Any]], calls: list[dict[str, Any]]) -> None:
        limit = min(len(CHAIN), RECALL_LIMIT)
        per_recording: Counter[str] = Counter()
        per_key: Counter[tuple[str, str]] = Counter()
        without_key: list[str] = []
        unknown = 0
        for transcript in transcripts:
            recording_id = transcript["recording"]["id"]
            if recording_id not in self.live.planned:
                unknown += 1
            per_recording[recording_id] += 1
            key = transcript.get("idempotency_key")
            if key is None:
                without_key.append(transcript["id"])
            else:
                per_key[(recording_id, key)] += 1
        over = {rid: n for rid, n in per_recording.items() if n > limit}
        paid_twice = {f"{rid} {key}": n for (rid, key), n in per_key.items() if n > 1}
        outcomes = Counter(call["outcome"] for call in calls)
        keys_per_recording = Counter(rid for rid, _ in per_key)
        ledger.sections["creates"] = {
            "transcripts_at_recall": len(transcripts),
            "chain_length": len(CHAIN),
            "max_per_recording": max(per_recording.values(), default=0),
            "recordings_by_transcript_count": dict(sorted(Counter(per_recording.values()).items())),
            "create_calls": len(calls),
            "create_call_outcomes": dict(outcomes),
            "over_limit": len(over),
            "paid_twice": len(paid_twice),
            "without_idempotency_key": len(without_key),
            "for_unknown_recordings": unknown,
            "over_limit_sample": dict(sample(over.items())),
            "paid_twice_sample": dict(sample(paid_twice.items())),
        }
        ledger.check(
            f"creates per recording <= chain length ({len(CHAIN)}) and <= {RECALL_LIMIT}",
            not over,
            f"max {max(per_recording.values(), default=0)} per recording over {len(per_recording)} recordings"
            + (f"; over: {dict(sample(over.items(), 3))}" if over else ""),
        )
        ledger.check(
            "no attempt paid twice (one transcript per recording and Idempotency-Key)",
            not paid_twice and not without_key,
            f"{len(transcripts)} transcripts, {len(per_key)} keys, {max(keys_per_recording.values(), default=0)} "
            f"keys max per recording, {len(calls)} create calls {dict(outcomes)}"
            + (f"; paid twice: {dict(sample(paid_twice.items(), 3))}" if paid_twice else "")
            + (f"; without a key: {len(without_key)}" if without_key else ""),
        )

    def check_webhooks(
        self, ledger: Ledger, deliveries: list[dict[str, Any]], by_topic: dict[str, list[Record]]
    ) -> None:
        on_kafka: dict[str, list[Record]] = defaultdict(list)
        for topic in INGEST_TOPICS:
            for record in by_topic[topic]:
                on_kafka[record.ce_id or ""].append(record)
        states: Counter[str] = Counter()
        attempt_results: Counter[str] = Counter()
        missing: list[str] = []
        wrong_topic: list[str] = []
        altered: list[str] = []
        not_brought_in: list[str] = []
        first_try = recovered = duplicates_sent = held_back = 0
        known = set()
        for delivery in deliveries:
            known.add(delivery["id"])
            states[delivery["state"]] += 1
            held_back += bool(delivery.get("held_back"))
            attempts = delivery["attempts"]
            for attempt in attempts:
                result = str(attempt["status"]) if attempt["status"] is not None else (attempt["error"] or "error")
                attempt_results[result] += 1
                duplicates_sent += bool(attempt.get("duplicate"))
            delivered = [a for a in attempts if a["status"] is not None and 200 <= a["status"] < 300]
            original = [a for a in attempts if not a.get("duplicate")]
            if original and original[0]["status"] is not None and 200 <= original[0]["status"] < 300:
                first_try += 1
            elif delivered:
                recovered += 1
            if delivery["state"] != "delivered":
                not_brought_in.append(f"{delivery['id']} {delivery['event']} {delivery['state']}")
            if not delivered:
                continue
            family = delivery["event"].split(".", 1)[0]
            expected_topic = RECALL_TOPICS.get(family, OTHER_EVENTS.name)
            found = on_kafka.get(delivery["id"], [])
            if not found:
                missing.append(f"{delivery['id']} {delivery['event']} {delivery.get('recording_id')}")
                continue
            if any(record.topic != expected_topic for record in found):
                wrong_topic.append(delivery["id"])
            body = json.dumps(delivery["body"], separators=(",", ":"), ensure_ascii=False).encode()
            if any(record.value != body for record in found):
                altered.append(delivery["id"])
        self.delivery_ids = known
        unknown = {ce_id: len(records) for ce_id, records in on_kafka.items() if ce_id not in known}
        written_twice = sum(1 for ce_id, records in on_kafka.items() if ce_id in known and len(records) > 1)
        ledger.sections["webhooks"] = {
            "deliveries": len(deliveries),
            "states": dict(states),
            "attempt_results": dict(attempt_results),
            "delivered_first_try": first_try,
            "delivered_after_non_2xx": recovered,
            "duplicate_deliveries_sent": duplicates_sent,
            "held_back_out_of_order": held_back,
            "kafka_messages": sum(len(r) for r in on_kafka.values()),
            "written_to_kafka_more_than_once": written_twice,
            "missing_from_kafka": len(missing),
            "on_wrong_topic": len(wrong_topic),
            "bytes_differ": len(altered),
            "not_brought_in": len(not_brought_in),
            "unknown_ce_ids_on_kafka": len(unknown),
            "missing_sample": sample(missing),
            "not_brought_in_sample": sample(not_brought_in),
        }
        ledger.check(
            "every webhook delivered with a 2xx is on its topic (by ce_id, same bytes)",
            not missing and not wrong_topic and not altered and not unknown,
            f"{len(deliveries) - len(not_brought_in)} delivered, {len(missing)} missing, {len(wrong_topic)} on a "
            f"wrong topic, {len(altered)} altered, {len(unknown)} unknown ids on Kafka; "
            f"{written_twice} written twice (allowed)",
        )
        ledger.check(
            "no webhook with a non-2xx answer was lost (Recall's retries brought it in)",
            not not_brought_in,
            f"{recovered} recovered by Recall's retries after non-2xx answers; final states {dict(states)}"
            + (f"; not brought in: {not_brought_in[:3]}" if not_brought_in else ""),
        )


async def recall_bytes(api: httpx.AsyncClient, transcript_id: str) -> bytes | None:
    """The transcript as Recall serves it now (retrieve for a fresh URL, then download)."""
    response = await api.get(f"/api/v1/transcript/{transcript_id}/")
    if response.status_code != 200:
        return None
    url = response.json()["data"]["download_url"]
    if not url:
        return None
    # Recall's API-host download URLs redirect to storage (the simulator serves both kinds).
    async with httpx.AsyncClient(timeout=30, follow_redirects=True) as downloads:
        download = await downloads.get(url)
    return download.content if download.status_code == 200 else None


def store_key(store: TranscriptStore, uri: str) -> str:
    prefix = store.uri("probe")[: -len("probe")]
    if not uri.startswith(prefix):
        raise ValueError(f"{uri} is not in the store {prefix}")
    return uri[len(prefix) :]


# --- fuzzing -----------------------------------------------------------------------------------------------------

FUZZ_FAMILIES = ("bot", "participant_events", "audio_mixed", "meeting_metadata", "calendar")
FUZZ_HEADER_NAMES = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "content-type",
    "traceparent",
    "x-forwarded-for",
    "transfer-encoding",
)
FUZZ_OK_STATUSES = frozenset({200, 400, 401, 404, 405, 413, 415, 422})


async def fuzz_ingest(
    ingest_url: str, bootstrap: str, options: Options, recall_ids: set[str] | None = None
) -> dict[str, Any]:
    """Hypothesis-generated requests against the running ingest: raw bytes, broken signatures and headers, validly
    signed events. Counts what was tried and answered; checks that only validly signed Recall events were written
    (every new message on the recall.* topics is one of them, and their number is the number accepted), and that no
    request got a 5xx other than the documented 503 (Kafka unavailable)."""
    before = await end_offsets(bootstrap, INGEST_TOPICS)
    report = await asyncio.to_thread(run_hypothesis, ingest_url, options)
    written = await read_topics(bootstrap, INGEST_TOPICS, start=before)
    problems: list[str] = report.pop("problems")
    signed_ok: dict[str, bytes] = report.pop("signed_ok")
    late = [record for record in written if record.ce_id in (recall_ids or set())]
    written = [record for record in written if record not in late]
    report["late_recall_redeliveries_written"] = len(late)  # a duplicate delivery by Recall, not the fuzzer's
    for record in written:
        body = signed_ok.get(record.ce_id or "")
        if body is None:
            problems.append(
                f"{record.topic}@{record.offset}: written but never sent validly signed (ce_id {record.ce_id})"
            )
        elif body != record.value:
            problems.append(f"{record.topic}@{record.offset}: bytes differ from the validly signed body")
    if len(written) != report["accepted"]:
        problems.append(f"{len(written)} new messages on the recall.* topics, {report['accepted']} requests accepted")
    report["written"] = len(written)
    report["problems"] = problems
    log(
        f"fuzz: {report['requests']} requests, statuses {report['statuses']}, accepted {report['accepted']}, "
        f"written {len(written)}, problems {len(problems)}"
    )
    return report


def run_hypothesis(ingest_url: str, options: Options) -> dict[str, Any]:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    secret = stack.dev_webhook_secret()
    statuses: Counter[int] = Counter()
    by_kind: dict[str, Counter[int]] = defaultdict(Counter)
    problems: list[str] = []
    signed_ok: dict[str, bytes] = {}
    accepted: list[tuple[bytes, dict[str, str]]] = []
    counts = {"accepted": 0, "duplicates": 0, "not_sent": 0}
    paths = ["/webhooks/recall"]
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        spec = client.get("/openapi.json")
        if spec.status_code == 200:
            paths = sorted(spec.json().get("paths", {})) or paths

        header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
        junk_headers = st.dictionaries(
            st.one_of(st.sampled_from(FUZZ_HEADER_NAMES), st.from_regex(r"\Ax-[a-z0-9-]{1,20}\Z")),
            header_text,
            max_size=6,
        )
        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
            max_leaves=12,
        )
        ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z")
        event_names = st.from_regex(r"\A[a-z_]{1,20}\Z")

        @st.composite
        def recall_event(draw: st.DrawFn, consumed: bool) -> dict[str, Any]:
            """A well-formed event. ``consumed``: a recording/transcript event (only ever sent broken)."""
            family = (
                draw(st.sampled_from(("recording", "transcript"))) if consumed else draw(st.sampled_from(FUZZ_FAMILIES))
            )
            name = draw(event_names)
            data: dict[str, Any] = {"data": {"code": name, "sub_code": None, "updated_at": "2025-01-01T00:00:00Z"}}
            if family in ("recording", "transcript"):
                data["recording"] = {"id": draw(ids), "metadata": {}}
            if family == "transcript":
                data["transcript"] = {"id": draw(ids), "metadata": {}}
            if family == "bot" or draw(st.booleans()):
                data["bot"] = {"id": draw(ids), "metadata": {}}
            elif family not in ("recording", "transcript"):
                data[family] = {"id": draw(ids)}
            return {"event": f"{family}.{name}", "data": data, "fuzz": draw(json_values)}

        mutations = st.sampled_from(
            (
                "flip_body",
                "append_body",
                "other_id",
                "shift_timestamp_small",
                "stale_timestamp",
                "future_timestamp",
                "garble_signature",
                "drop_signature",
                "drop_id",
                "drop_timestamp",
                "wrong_secret",
                "v2_signature",
                "empty_signature",
                "non_numeric_timestamp",
            )
        )

        # Unsigned requests that look the part: a JSON content type and webhook headers with junk in them, so that
        # they reach the signature check rather than stop at the content type.
        forged_headers = st.fixed_dictionaries(
            {"content-type": st.sampled_from(("application/json", "application/json; charset=utf-8"))},
            optional={
                "webhook-id": header_text,
                "webhook-timestamp": st.one_of(
                    header_text, st.integers(-(2**40), 2**40).map(str), st.just(str(int(time.time())))
                ),
                "webhook-signature": st.one_of(header_text, header_text.map(lambda text: f"v1,{text}")),
            },
        )
        requests = st.one_of(
            st.tuples(st.just("raw_bytes"), st.binary(max_size=2048), junk_headers, st.none()),
            st.tuples(st.just("raw_bytes_forged"), st.binary(max_size=2048), forged_headers, junk_headers),
            st.tuples(
                st.just("junk_json_forged"),
                json_values.map(lambda v: json.dumps(v).encode()),
                forged_headers,
                junk_headers,
            ),
            st.tuples(st.just("signed_then_broken"), recall_event(consumed=True), st.just({}), mutations),
            st.tuples(st.just("signed_then_broken"), recall_event(consumed=False), st.just({}), mutations),
            st.tuples(st.just("signed_not_recall"), json_values, st.just({}), st.none()),
            # A valid delivery with one header value replaced by raw latin-1 bytes ("\xb2" is "²": isdigit(), not
            # int()) or an out-of-range timestamp: always a 4xx, never a 5xx (issue 14).
            st.tuples(
                st.just("signed_bad_header_value"),
                recall_event(consumed=False),
                st.sampled_from(("webhook-id", "webhook-timestamp", "webhook-signature")),
                st.one_of(
                    st.sampled_from((b"\xb2", b"\xb9\xb2\xb3", b"999999999999", b"1\xb2", b"v1,\xb2")),
                    st.binary(min_size=1, max_size=20).filter(
                        lambda raw: all(0x20 <= b < 0x7F or b >= 0xA0 for b in raw)
                    ),
                ),
            ),
            st.tuples(st.just("signed_valid"), recall_event(consumed=False), st.just({}), st.none()),
            st.tuples(st.just("replay_accepted"), st.integers(0, 2**31), st.just({}), st.none()),
            st.tuples(st.just("too_large"), st.integers(1, 3), st.just({}), st.none()),
            st.tuples(
                st.just("other_paths"),
                st.sampled_from(("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST")),
                st.one_of(st.sampled_from(paths), st.from_regex(r"\A/([a-z._-][a-z/._-]{0,30})?\Z")),
                st.binary(max_size=256),
            ),
        )

        def sign(
            body: bytes, webhook_id: str, moment: datetime | None = None, secrets: list[str] | None = None
        ) -> dict[str, str]:
            headers = sign_webhook(secrets or [secret], webhook_id, body, timestamp=moment)
            headers["Content-Type"] = "application/json"
            return headers

        def broken(body: bytes, mutation: str) -> tuple[bytes, dict[str, str]]:
            webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
            headers = sign(body, webhook_id)
            if mutation == "flip_body":
                index = len(body) // 2
                body = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
            elif mutation == "append_body":
                body = body + b" "
            elif mutation == "other_id":
                headers["webhook-id"] = f"msg_fuzz_{uuid.uuid4().hex}"
            elif mutation == "shift_timestamp_small":
                headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
            elif mutation == "stale_timestamp":
                headers = sign(body, webhook_id, datetime.now(UTC) - timedelta(minutes=6))
            elif mutation == "future_timestamp":
                headers = sign(body, webhook_id, datetime.now(UTC) + timedelta(minutes=6))
            elif mutation == "garble_signature":
                signature = headers["webhook-signature"]
                headers["webhook-signature"] = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
            elif mutation == "drop_signature":
                del headers["webhook-signature"]
            elif mutation == "drop_id":
                del headers["webhook-id"]
            elif mutation == "drop_timestamp":
                del headers["webhook-timestamp"]
            elif mutation == "wrong_secret":
                headers = sign(body, webhook_id, secrets=["whsec_" + "A" * 43 + "="])
            elif mutation == "v2_signature":
                headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
            elif mutation == "empty_signature":
                headers["webhook-signature"] = ""
            elif mutation == "non_numeric_timestamp":
                headers["webhook-timestamp"] = "soon"
            return body, headers

        def send(
            kind: str, method: str, path: str, body: bytes, headers: Mapping[str, str | bytes]
        ) -> httpx.Response | None:
            try:
                response = client.request(method, path, content=body, headers=headers)
            except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
                counts["not_sent"] += 1  # the client itself refused to send it (invalid header bytes, path)
                return None
            except httpx.TransportError as error:
                problems.append(f"{kind}: connection failed ({type(error).__name__})")
                return None
            statuses[response.status_code] += 1
            by_kind[kind][response.status_code] += 1
            documented_503 = response.status_code == 503 and _error_code(response) in ("kafka_unavailable", "not_ready")
            if response.status_code >= 500 and not documented_503:
                problems.append(f"{kind} {method} {path}: {response.status_code} {response.text[:120]}")
            elif response.status_code not in FUZZ_OK_STATUSES and response.status_code != 503:
                problems.append(f"{kind} {method} {path}: unexpected {response.status_code}")
            return response

        @seed(options.seed)
        @settings(
            max_examples=options.fuzz_examples,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(requests)
        def one(request: tuple[str, Any, Any, Any]) -> None:
            kind, first, second, third = request
            if kind in ("raw_bytes", "raw_bytes_forged", "junk_json_forged"):
                headers = {**(third or {}), **second}  # the forged webhook headers win over random ones
                response = send(kind, "POST", "/webhooks/recall", first, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}: an unsigned body was accepted ({response.status_code})")
            elif kind == "signed_then_broken":
                body, headers = broken(json.dumps(first).encode(), third)
                response = send(f"{kind}:{third}", "POST", "/webhooks/recall", body, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}:{third}: accepted ({response.status_code})")
            elif kind == "signed_not_recall":
                # A verified JSON object is always accepted (routed to recall.other.events); anything else is not.
                body = json.dumps(first).encode()
                webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
                response = send(kind, "POST", "/webhooks/recall", body, sign(body, webhook_id))
                if isinstance(first, dict):
                    signed_ok[webhook_id] = body
                    if response is not None and response.status_code == 200:
                        counts["accepted"] += 1
                    elif response is not None and response.status_code != 503:
                        problems.append(f"{kind}: a verified JSON object was refused ({response.status_code})")
                elif response is not None and response.is_success:
                    problems.append(f"{kind}: not a JSON object, accepted: {body[:80]!r}")
            elif kind == "signed_bad_header_value":
                body = json.dumps(first).encode()
                headers = {**sign(body, f"msg_fuzz_{uuid.uuid4().hex}"), second: third}
                response = send(kind, "POST", "/webhooks/recall", body, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}: {second}={third!r} accepted ({response.status_code})")
            elif kind == "signed_valid":
                body = json.dumps(first).encode()
                webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
                headers = sign(body, webhook_id)
                signed_ok[webhook_id] = body
                response = send(kind, "POST", "/webhooks/recall", body, headers)
                if response is not None and response.status_code == 200:
                    counts["accepted"] += 1
                    accepted.append((body, headers))
                elif response is not None and response.status_code != 503:
                    problems.append(f"{kind}: a validly signed event was refused ({response.status_code})")
            elif kind == "replay_accepted":
                if not accepted:
                    return
                body, headers = accepted[first % len(accepted)]
                fresh = sign(body, headers["webhook-id"])  # Recall re-signs each attempt
                response = send(kind, "POST", "/webhooks/recall", body, fresh)
                if response is not None and response.status_code == 200:
                    if response.json().get("status") == "accepted":
                        counts["accepted"] += 1  # written again: allowed, and counted
                    else:
                        counts["duplicates"] += 1
            elif kind == "too_large":
                body = b'{"event":"bot.x","pad":"' + b"x" * (1024 * 1024 * first) + b'"}'
                send(kind, "POST", "/webhooks/recall", body, sign(body, f"msg_fuzz_{uuid.uuid4().hex}"))
            else:
                method, path, body = first, second, third
                if method in ("GET", "HEAD", "OPTIONS"):
                    body = b""
                headers = {"Content-Type": "application/json"}
                response = send(kind, method, path, body, headers)
                if response is not None and response.is_success and path == "/webhooks/recall" and method == "POST":
                    problems.append("other_paths: an unsigned POST was accepted")

        one()
    return {
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "by_kind": {kind: {str(k): v for k, v in sorted(c.items())} for kind, c in sorted(by_kind.items())},
        "accepted": counts["accepted"],
        "duplicates_answered": counts["duplicates"],
        "not_sent_by_client": counts["not_sent"],
        "paths": paths,
        "problems": problems,
        "signed_ok": signed_ok,
    }


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        value = body.get("error") or body.get("status")
        return str(value) if value is not None else None
    return None


# --- stack -------------------------------------------------------------------------------------------------------


def prepare_home(profile: stack.Profile, ledger_dir: Path) -> None:
    """A fresh var/<name>/ (earlier ledgers kept)."""
    if profile.home.exists():
        for child in profile.home.iterdir():
            if child.resolve() == ledger_dir.resolve() or child.name.startswith("ledger-"):
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)


def chaos_processes(profile: stack.Profile, options: Options) -> list[stack.Process]:
    sim_env = {
        "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": str(options.transcript_delay),
        "RECALL_SIM_TIME_SCALE": str(options.time_scale),
        "RECALL_SIM_SEED": str(options.seed),
        "LOG_LEVEL": "WARNING",
    }
    processes = stack.processes(profile, sim_env=sim_env)
    for process in processes:
        if process.name == "transcriber":
            process.env["TRANSCRIBER_PROVIDERS"] = json.dumps(CHAIN)
            process.env["TRANSCRIBER_SESSION_TIMEOUT_SECONDS"] = str(options.session_timeout)
        if process.name == "fetcher":
            process.env["FETCHER_SESSION_TIMEOUT_SECONDS"] = str(options.session_timeout)
        if process.name != "recall_sim":
            process.env.setdefault("LOG_LEVEL", "INFO")
    return processes


def versions() -> dict[str, Any]:
    from importlib.metadata import version

    def git(*args: str) -> str | None:
        result = subprocess.run(["git", *args], cwd=stack.ROOT, capture_output=True, text=True)
        return result.stdout.strip() or None if result.returncode == 0 else None

    packages = {}
    for name in ("aiokafka", "faust-streaming", "fastapi", "httpx", "hypothesis"):
        with contextlib.suppress(Exception):
            packages[name] = version(name)
    kafka_version = os.environ.get("KAFKA_VERSION")
    if kafka_version is None:
        pom = (stack.ROOT / "scripts" / "kafka" / "pom.xml").read_text()
        kafka_version = pom.split("<kafka.version>", 1)[1].split("<", 1)[0] if "<kafka.version>" in pom else None
    return {
        "python": platform.python_version(),
        "kafka": kafka_version,
        "packages": packages,
        "git": git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain")),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()},
    }


def print_ledger(ledger: Ledger, path: Path) -> None:
    table = Table(title="Chaos ledger", show_lines=False)
    table.add_column("check", overflow="fold")
    table.add_column("", width=4)
    table.add_column("detail", overflow="fold")
    for check in ledger.checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[red]FAIL[/]", check.detail)
    console.print(table)
    timing = ledger.sections.get("timing", {})
    faults = ledger.sections.get("faults", [])
    kinds = Counter(event["kind"] for event in faults)
    console.print(
        f"faults: {dict(kinds)}; last fault over at {timing.get('last_fault_over_at_s')}s; "
        f"last recording ended {timing.get('drain_after_last_fault_s')}s after it; consumers caught up "
        f"{timing.get('quiescent_after_last_fault_s')}s after it; latency {timing.get('latency_s')}",
        highlight=False,
    )
    console.print(f"ledger: {path}", highlight=False)
    console.print("[green]the ledger balances[/]" if ledger.ok else "[red]the ledger does not balance[/]")


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # a restarting broker is expected here
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(SystemExit(143)))
    profile = stack.ephemeral_profile(options.name)
    options.ledger_dir.mkdir(parents=True, exist_ok=True)
    prepare_home(profile, options.ledger_dir)
    log(
        f"seed {options.seed}; {options.recordings} recordings; stack in {profile.home} "
        f"(kafka {profile.bootstrap}, ingest :{profile.ingest_port}, recall_sim :{profile.sim_port})"
    )
    started_at = datetime.now(UTC)
    started = time.monotonic()
    info = versions()
    processes = chaos_processes(profile, options)
    ledger: Ledger
    try:
        stack.kafka(profile, "start")
        for process in processes:
            stack.start(profile, process)
        stack.wait_ready(profile, processes, 300)
        log(f"stack ready in {time.monotonic() - started:.1f}s")
        ledger = asyncio.run(Chaos(profile, processes, options).run())
    except (Exception, KeyboardInterrupt, SystemExit) as error:
        ledger = Ledger()
        ledger.check("harness ran to the end", False, f"{type(error).__name__}: {error}"[:1000])
        log(f"[red]stopped early: {type(error).__name__}: {error}[/]")
    finally:
        with contextlib.suppress(BaseException):
            stack.down(profile)
    ledger.sections = {
        "run": {
            "started_at": started_at.isoformat(),
            "seconds": round(time.monotonic() - started, 1),
            "options": {key: (str(value) if isinstance(value, Path) else value) for key, value in vars(options).items()}
            | {"feed_seconds": round(options.feed, 1)},
            "profile": {"home": str(profile.home), "kafka": profile.bootstrap},
            "chain": CHAIN,
            **info,
        },
        **ledger.sections,
    }
    path = options.ledger_dir / f"ledger-{started_at.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(ledger.to_json(), indent=2, default=str) + "\n")
    print_ledger(ledger, path)
    if ledger.ok and not options.keep:
        prepare_home(profile, options.ledger_dir)
        with contextlib.suppress(OSError):
            profile.home.rmdir()  # gone unless the ledgers live in it
    return 0 if ledger.ok else 1


if __name__ == "__main__":
    sys.exit(main())
