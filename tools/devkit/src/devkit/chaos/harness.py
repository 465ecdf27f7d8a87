"""The run: plan the recordings, feed them to Recall, follow their outcomes, run the faults, drain, reconcile.

The faults (:mod:`devkit.chaos.faults`) and the checks (:mod:`devkit.chaos.checks`) are functions of the
:class:`Chaos` they act on; this module holds what they share: the clock, the plan, the progress.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from devkit import stack
from devkit.balancer import Balancer
from devkit.chaos import checks, faults
from devkit.chaos.faults import kubelet, lost, windows
from devkit.chaos.faults.base import FaultEvent
from devkit.chaos.fuzz import fuzz_ingest
from devkit.chaos.ledger import Ledger
from devkit.chaos.options import GROUPS, Options, log
from devkit.demo import Demo, Planned, outcomes_consumer
from devkit.kafka import group_lag, stop_consumer
from devkit.stack import Process, Profile


class Chaos:
    """One run's state: the plan, the clock, what each fault window is doing, what the collector saw."""

    def __init__(self, profile: Profile, processes: list[Process], options: Options) -> None:
        self.profile = profile
        self.processes = {process.name: process for process in processes}
        self.options = options
        self.rng = random.Random(options.seed)  # noqa: S311 - a replayable schedule, not cryptography
        self.sim_url = f"http://127.0.0.1:{profile.sim_port}"
        self.ingest_url = f"http://127.0.0.1:{profile.ingest_port}"
        self.live = Demo(profile)
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
        self.outcome_at = 0.0  # run time of the latest outcome the collector saw
        self.final = Demo(profile)
        # The worker-core and reconciliation faults (faults/lost.py, slow.py): what Recall does to which recording.
        self.lost: dict[str, tuple[str, ...]] = {}  # recording -> the webhook events never delivered
        self.slow: set[str] = set()  # recordings whose transcripts stay processing past the deadline
        self.spec_overrides: dict[str, dict[str, Any]] = {}  # recording -> transcript spec fields
        self.reconcile_runs: list[dict[str, Any]] = []
        self.measurements: dict[str, list[dict[str, Any]]] = {}  # failover times and the like, into the ledger
        self.locks: dict[str, asyncio.Lock] = {}  # one fault at a time acts on a service's replicas
        self.balancer: Balancer | None = None
        if options.replicas > 1:
            self.balancer = Balancer(profile.ingest_port, self.ingest_ports)

    def fuzz_url(self) -> str:
        """Where the fuzzing pass sends: ingest itself. Behind the balancer, one replica directly: the pass judges
        ingest's answers to bad input, and a user-space proxy is not kube-proxy (which forwards packets): when ingest
        answers 413 and closes on a body it did not read, the reset can reach the proxy before the 413 does."""
        ports = self.ingest_ports()
        return f"http://127.0.0.1:{ports[0]}" if self.balancer is not None and ports else self.ingest_url

    def ingest_ports(self) -> list[int]:
        return [p.port for p in self.processes.values() if p.service == "ingest" and p.port != self.profile.ingest_port]

    def replicas(self, service: str) -> list[Process]:
        """The replicas of ``service`` that run now, by name."""
        return sorted(
            (p for p in self.processes.values() if p.service == service and stack.running_pid(self.profile, p.name)),
            key=lambda p: p.name,
        )

    def lock(self, service: str) -> asyncio.Lock:
        return self.locks.setdefault(service, asyncio.Lock())

    def measure(self, kind: str, **values: Any) -> None:
        self.measurements.setdefault(kind, []).append(values)

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
            self.live.planned[recording_id] = Planned(recording_id, kind)

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
                json={
                    "id": item.recording_id,
                    "metadata": {"chaos": item.kind},
                    "transcript": item.transcript_spec | self.spec_overrides.get(item.recording_id, {}),
                },
            )
            response.raise_for_status()
            self.fed += 1
        self.fed_at = self.now()
        log(f"all {len(items)} recordings created at Recall ({self.fed_at:.1f}s)")

    async def collect(self, stop: asyncio.Event) -> None:
        """Consume transcripts.ready/failed like a downstream service would, for progress and finish times."""
        consumer = outcomes_consumer(self.profile.bootstrap)
        await consumer.start()
        try:
            while not stop.is_set():
                if self.live.take_batch(await consumer.getmany(timeout_ms=500)):
                    self.outcome_at = self.now()
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

    async def first_outcome_after(self, since: float, within: float) -> float | None:
        """Seconds from run time ``since`` to the first outcome after it; None if none came ``within`` seconds."""
        deadline = time.monotonic() + within
        while self.outcome_at <= since:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self.progressed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.progressed.wait(), min(1.0, remaining))
        return self.outcome_at - since

    def record(self, event: FaultEvent, detail: str) -> None:
        """A discrete fault carried out: it ends now, and goes into the ledger with ``detail``."""
        event.until, event.detail = self.now(), detail
        self.events.append(event)

    def open_window(self, kind: str, target: str, detail: str) -> FaultEvent:
        event = FaultEvent(self.now(), kind, target, detail)
        self.events.append(event)
        return event

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
                        lag = await group_lag(self.profile.bootstrap, GROUPS)
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
        # Every blocking helper (a start waiting until ready, a process's exit, a broker node's restart) holds a
        # thread; the default pool (cores + 4) would queue a fault's wait behind another's and skew its timing.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=64))
        if self.balancer is not None:
            await self.balancer.start()
        try:
            return await self.run_with(ledger, stop, limits)
        finally:
            if self.balancer is not None:
                await self.balancer.close()

    async def run_with(self, ledger: Ledger, stop: asyncio.Event, limits: httpx.Limits) -> Ledger:
        async with httpx.AsyncClient(base_url=self.sim_url, timeout=30, limits=limits) as sim:
            self.started = time.monotonic()
            collector = asyncio.create_task(self.collect(stop))
            reporter = asyncio.create_task(self.progress(stop))
            self.deadline = self.started + self.options.feed + self.options.drain_timeout / 2
            discrete_done, feed_done = asyncio.Event(), asyncio.Event()
            await faults.prepare(self, sim)
            discrete = faults.schedule(self)
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

            kubelet_stop = asyncio.Event()
            kubelet_task = asyncio.create_task(kubelet.restart_crashed(self, kubelet_stop))
            results = await asyncio.gather(
                all_of([self.feed(sim)], feed_done),
                all_of(discrete, discrete_done),
                windows.fault_windows(self, sim, discrete_done, feed_done),
                return_exceptions=True,
            )
            failures = [r for r in results if isinstance(r, BaseException)]
            # Whatever happened, clear every fault before drawing the ledger.
            await windows.clear(self, sim)
            self.faults_over_at = self.now()
            if failures:
                for failure in failures:
                    self.errors.append(f"{type(failure).__name__}: {failure}")
                    log(f"[red]harness error: {type(failure).__name__}: {failure}[/]")
            log(f"{self.faults_over_at:6.1f}s  last fault over; draining")
            drain_over = asyncio.Event()
            reconciling = asyncio.create_task(lost.reconciler(self, drain_over))
            drained = await self.drain(sim)
            kubelet_stop.set()
            await asyncio.gather(kubelet_task, return_exceptions=True)
            drained_at = self.now()
            drain_over.set()
            await asyncio.gather(reconciling, return_exceptions=True)
            stop.set()
            await asyncio.gather(collector, reporter, return_exceptions=True)
            log(f"{drained_at:6.1f}s  drained: {drained}")
            try:
                await checks.reconcile(self, ledger, sim, drained, drained_at)
            except Exception as error:  # keep what was checked; say the rest could not be
                ledger.check("reconciliation ran to the end", False, repr(error)[:500])
                log(f"[red]reconciliation failed: {error!r}[/]")
            if self.measurements:
                ledger.sections["measurements"] = self.measurements
        if self.options.fuzz:
            try:
                fuzz_report = await fuzz_ingest(
                    self.fuzz_url(), self.profile.bootstrap, self.options, self.delivery_ids
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
