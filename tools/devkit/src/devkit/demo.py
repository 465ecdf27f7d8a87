"""``make demo``: the whole pipeline, end to end, on this machine, then a summary built the way a downstream service
would build it (by consuming ``transcripts.ready`` and ``transcripts.failed``).

Starts a local Kafka broker, the Recall simulator and the three services (profile ``demo``: its own ports and
var/demo/, so a ``make up`` stack is left alone), has the simulator finish a batch of recordings with a realistic
mix, shows progress, prints the summary and one readable transcript, and stops everything it started. Exit 0 only
when every recording ended as the mix says it should.

    DEMO_RECORDINGS=20 (default)   how many recordings
    DEMO_TIMEOUT=180 (seconds)     give up waiting after this long
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from devkit import stack
from devkit.kafka import stop_consumer
from pipeline_common.contracts import TranscriptFailed, TranscriptReady
from pipeline_common.kafka import connection_kwargs
from pipeline_common.topics import TRANSCRIPTS_FAILED, TRANSCRIPTS_READY

PRIMARY, FALLBACK = "recallai_async", "deepgram_async"
# A pipe or a CI log has no terminal width: give the summary table room instead of 80 columns.
console = Console(width=None if sys.stdout.isatty() else 180)


@dataclass
class Planned:
    recording_id: str
    kind: str  # primary | fallback | empty | doomed
    created_at: float = 0.0
    ready: TranscriptReady | None = None
    failed: TranscriptFailed | None = None
    finished_at: float | None = None
    ready_events: int = 0
    failed_events: int = 0

    @property
    def transcript_spec(self) -> dict[str, object]:
        if self.kind == "fallback":
            return {"failing_providers": {PRIMARY: "provider_connection_failed"}}
        if self.kind == "doomed":
            return {
                "failing_providers": {PRIMARY: "provider_connection_failed", FALLBACK: "provider_connection_failed"}
            }
        if self.kind == "empty":
            return {"empty": True}
        return {"words": 300 + len(self.recording_id) * 7, "speakers": 3}

    def problems(self, providers: Collection[str] | None = None, chain_length: int = 2) -> list[str]:
        """What differs from the expected outcome (empty when as expected). ``providers``: which may have produced
        the transcript (default: the fallback for a ``fallback`` recording, else the primary); ``chain_length``:
        the attempts a ``doomed`` recording makes before it fails."""
        if self.ready_events > 1 or self.failed_events > 1:
            return [f"announced more than once (ready {self.ready_events}, failed {self.failed_events})"]
        if self.kind == "doomed":
            if self.failed is None:
                return ["expected transcripts.failed"]
            if self.failed.reason.value != "providers_exhausted" or len(self.failed.attempts) != chain_length:
                return [f"expected providers_exhausted after {chain_length} attempts, got {self.failed.reason.value}"]
            return ["ready as well"] if self.ready is not None else []
        if self.ready is None:
            return ["no transcripts.ready" + (f" (failed: {self.failed.reason.value})" if self.failed else "")]
        allowed = sorted(providers or {FALLBACK if self.kind == "fallback" else PRIMARY})
        problems = []
        if self.ready.provider not in allowed:
            expected = allowed[0] if len(allowed) == 1 else f"one of {allowed}"
            problems.append(f"provider {self.ready.provider}, expected {expected}")
        if self.kind == "empty" and self.ready.word_count != 0:
            problems.append("expected an empty transcript")
        if self.kind != "empty" and self.ready.word_count == 0:
            problems.append("expected words")
        return problems


def outcomes_consumer(bootstrap: str) -> AIOKafkaConsumer:
    """``transcripts.ready`` and ``transcripts.failed`` from their beginning, read as a downstream service would."""
    return AIOKafkaConsumer(
        TRANSCRIPTS_READY.name,
        TRANSCRIPTS_FAILED.name,
        **connection_kwargs(bootstrap),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        isolation_level="read_committed",  # transcripts.ready is written in transactions
        metadata_max_age_ms=5000,
    )


@dataclass
class Demo:
    profile: stack.Profile
    planned: dict[str, Planned] = field(default_factory=dict)

    def plan(self, count: int) -> None:
        kinds = ["doomed", "empty"][: max(0, min(2, count - 1))]
        kinds += ["fallback"] * (max(1, count // 5) if count >= 4 else 0)
        kinds += ["primary"] * (count - len(kinds))
        for kind in kinds:
            recording_id = str(uuid.uuid4())
            self.planned[recording_id] = Planned(recording_id, kind)

    async def create_recordings(self) -> None:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.profile.sim_port}", timeout=10) as sim:
            for item in self.planned.values():
                item.created_at = time.monotonic()
                response = await sim.post(
                    "/admin/recordings",
                    json={"id": item.recording_id, "metadata": {"demo": item.kind}, "transcript": item.transcript_spec},
                )
                response.raise_for_status()

    async def collect(self, wait_seconds: float) -> None:
        """Consume the public topics like a downstream service, until every planned recording has ended."""
        consumer = outcomes_consumer(self.profile.bootstrap)
        await consumer.start()
        try:
            with Progress(
                TextColumn("[bold]transcripts"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("", total=len(self.planned))
                create = asyncio.create_task(self.create_recordings())
                deadline = time.monotonic() + wait_seconds
                while time.monotonic() < deadline:
                    self.take_batch(await consumer.getmany(timeout_ms=500))
                    done = [p for p in self.planned.values() if p.finished_at is not None]
                    ready = sum(1 for p in done if p.ready is not None)
                    progress.update(task, completed=len(done), description=f"ready {ready}  failed {len(done) - ready}")
                    if len(done) == len(self.planned):
                        break
                await create
        finally:
            await stop_consumer(consumer)

    def take_batch(self, batch: Mapping[Any, list[ConsumerRecord[Any, bytes]]]) -> int:
        """Take every record of a ``getmany`` batch; how many there were."""
        count = 0
        for records in batch.values():
            for record in records:
                self.take(record.topic, record.value or b"")
                count += 1
        return count

    def take(self, topic: str, value: bytes) -> None:
        """One ``transcripts.ready`` or ``transcripts.failed`` record: count it against its recording."""
        event: TranscriptReady | TranscriptFailed
        if topic == TRANSCRIPTS_READY.name:
            event = TranscriptReady.model_validate_json(value)
        else:
            event = TranscriptFailed.model_validate_json(value)
        item = self.planned.get(event.recording_id)
        if item is None:
            return
        if isinstance(event, TranscriptReady):
            item.ready_events += 1
            item.ready = item.ready or event
        else:
            item.failed_events += 1
            item.failed = item.failed or event
        item.finished_at = item.finished_at or time.monotonic()

    @property
    def ready_counts(self) -> dict[str, int]:
        return {item.recording_id: item.ready_events for item in self.planned.values() if item.ready_events}

    @property
    def failed_counts(self) -> dict[str, int]:
        return {item.recording_id: item.failed_events for item in self.planned.values() if item.failed_events}

    def summary(self) -> bool:
        table = Table(title="Recordings", show_lines=False)
        for column in (
            "recording",
            "mix",
            "outcome",
            "provider",
            "attempts",
            "words",
            "speakers",
            "to ready",
            "stored at / reason",
        ):
            table.add_column(column, overflow="fold")
        ok = True
        for item in self.planned.values():
            problems = item.problems()
            ok &= not problems
            took = f"{item.finished_at - item.created_at:.1f}s" if item.finished_at else "-"
            mark = "[green]ok[/]" if not problems else f"[red]{'; '.join(problems)}[/]"
            provider, attempts, words, speakers, where = outcome_columns(item)
            table.add_row(item.recording_id[:8], item.kind, mark, provider, attempts, words, speakers, took, where)
        console.print(table)
        latencies = sorted(i.finished_at - i.created_at for i in self.planned.values() if i.finished_at)
        if latencies:
            p99 = latencies[min(len(latencies) - 1, round(0.99 * (len(latencies) - 1)))]
            console.print(
                f"end to end (recording.done sent -> event consumed): p50 {statistics.median(latencies):.2f}s, "
                f"p99 {p99:.2f}s, max {latencies[-1]:.2f}s over {len(latencies)} recordings"
            )
        return ok

    def show_one_transcript(self) -> None:
        for item in self.planned.values():
            if item.ready is not None and item.ready.word_count > 0 and "txt" in item.ready.renditions:
                path = Path(urlparse(item.ready.renditions["txt"].uri).path)
                lines = path.read_text(encoding="utf-8").splitlines()
                console.rule(f"readable transcript of {item.recording_id} ({path})")
                console.print("\n".join(lines[:20]) + ("\n..." if len(lines) > 20 else ""), markup=False)
                return


def outcome_columns(item: Planned) -> tuple[str, str, str, str, str]:
    """Provider, attempts, words, speakers, and where the transcript is stored (or why there is none)."""
    if item.ready is not None:
        ready = item.ready
        words, speakers = str(ready.word_count), str(len(ready.participants))
        return ready.provider or "?", str(ready.attempt or "?"), words, speakers, short_location(ready.raw.uri)
    if item.failed is not None:
        tried = ", ".join(f"{a.provider} {a.sub_code or a.outcome}" for a in item.failed.attempts)
        return "-", str(len(item.failed.attempts)), "-", "-", f"{item.failed.reason.value}: {tried}"
    return "-", "-", "-", "-", "never finished"


def short_location(uri: str) -> str:
    """The transcript's folder in the store, relative to the repository when it is a local file."""
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri.rsplit("/", 1)[0] + "/"
    folder = Path(parsed.path).parent
    try:
        return f"{folder.relative_to(Path.cwd())}/"
    except ValueError:
        return f"{folder}/"


def main() -> int:
    count = int(os.environ.get("DEMO_RECORDINGS", "20"))
    timeout = float(os.environ.get("DEMO_TIMEOUT", "180"))
    if count < 1:
        console.print("DEMO_RECORDINGS must be at least 1")
        return 2
    profile = stack.PROFILES["demo"]
    stack.down(profile)  # leftovers of an interrupted demo
    shutil.rmtree(profile.home, ignore_errors=True)
    demo = Demo(profile)
    demo.plan(count)
    started = time.monotonic()
    with stack.running(profile, sim_env={"RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.5"}):
        console.print(f"stack ready in {time.monotonic() - started:.1f}s; finishing {count} recordings")
        asyncio.run(demo.collect(timeout))
        ok = demo.summary()
        demo.show_one_transcript()
        console.print(f"logs: {profile.logs}   transcripts: {profile.transcripts}")
    console.print(
        "[green]every recording ended as expected[/]" if ok else "[red]some recordings did not end as expected[/]"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
