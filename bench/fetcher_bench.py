"""Fetcher benchmark: sustained transcripts/second for 100 kB and 5 MB transcripts, and peak RSS for a 50 MB one.

Runs everything for real on this machine: the Kafka broker at ``KAFKA_BOOTSTRAP_SERVERS`` (default the local broker,
``make kafka-up``), the Recall simulator as its own process, and ``python -m fetcher`` as its own process with a
file:// store in a temporary directory. Transcripts are created in the simulator and downloaded once beforehand (so
the simulator serves them from its cache and the fetcher, not the generator, is measured), then their
``transcript.done`` events are produced all at once and the clock runs until every ``transcripts.ready`` is read.
Peak RSS is the fetcher process's ``VmHWM`` from /proc.

    KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9092 .venv/bin/python bench/fetcher_bench.py [--small 200] [--medium 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline_common.cloudevents import CloudEventAttributes, build_headers, header_value  # noqa: E402
from pipeline_common.logging import configure_logging  # noqa: E402
from pipeline_common.settings import LoggingSettings  # noqa: E402
from pipeline_common.topics import TRANSCRIPT_EVENTS, TRANSCRIPTS_READY  # noqa: E402
from tests.fetcher.support import FetcherWorker, Pipeline, SimTranscript, free_port, worker_env  # noqa: E402
from tests.support.recall_sim import RunningSim, SimAdmin, sim_settings  # noqa: E402


def rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")


def start_sim(log_dir: Path) -> tuple[subprocess.Popen[bytes], RunningSim]:
    key = "bench-" + secrets.token_hex(8)
    port = free_port()
    settings = sim_settings(recall_sim_api_key=SecretStr(key))
    env = {
        **os.environ,
        "RECALL_SIM_HOST": "127.0.0.1",
        "RECALL_SIM_PORT": str(port),
        "RECALL_SIM_API_KEY": key,
        "RECALL_SIM_TRANSCRIPT_DELAY_SECONDS": "0.01",
        "LOG_LEVEL": "WARNING",
    }
    with (log_dir / "recall_sim.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, "-m", "recall_sim"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("the simulator did not start")
        time.sleep(0.1)
    return process, RunningSim(base_url=base_url, settings=settings, admin=SimAdmin(base_url))


async def prepare(pipeline: Pipeline, count: int, size: int) -> list[SimTranscript]:
    """``count`` finished transcripts of about ``size`` bytes, each downloaded once (so the simulator caches it)."""
    made: list[SimTranscript] = []
    for start in range(0, count, 10):
        batch = await asyncio.gather(
            *(pipeline.make_transcript(target_bytes=size) for _ in range(min(10, count - start)))
        )
        made.extend(batch)
    async with pipeline.sim.client(timeout=120) as recall:
        for transcript in made:
            artifact = await recall.retrieve_transcript(transcript.transcript_id)
            assert artifact.download_url is not None
            await recall.download(artifact.download_url, 200 * 1024 * 1024)
    return made


async def publish_all(bootstrap: str, transcripts: list[SimTranscript]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = []
        for transcript in transcripts:
            headers = build_headers(
                CloudEventAttributes(
                    id=transcript.webhook_id,
                    source="urn:recall-pipeline:bench",
                    type="transcript.done",
                    subject=transcript.recording_id,
                )
            )
            pending.append(
                await producer.send(
                    TRANSCRIPT_EVENTS.name, transcript.body, key=transcript.recording_id.encode(), headers=headers
                )
            )
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def wait_all_ready(pipeline: Pipeline, transcripts: list[SimTranscript], worker: FetcherWorker) -> None:
    wanted = {f"transcript-ready:{t.transcript_id}".encode() for t in transcripts}

    def done(records: list) -> bool:  # type: ignore[type-arg]
        seen = {header_value(list(r.headers or ()), "ce_id") for r in records}
        return wanted <= seen

    await pipeline.records(TRANSCRIPTS_READY.name, until=done, timeout=1800, worker=worker)


async def measure(
    bootstrap: str, sim: RunningSim, work: Path, label: str, count: int, size: int, concurrency: int
) -> dict[str, object]:
    pipeline = Pipeline(bootstrap, sim)
    transcripts = await prepare(pipeline, count, size)
    base = work / f"{label}-{uuid.uuid4().hex[:6]}"
    base.mkdir()
    env = worker_env(
        bootstrap=bootstrap,
        sim=sim,
        store_url=(base / "store").as_uri(),
        app_id=f"fetcher-bench-{uuid.uuid4().hex[:8]}",
        data_dir=base / "data",
        FETCHER_CONCURRENCY=str(concurrency),
        FETCHER_MAX_TRANSCRIPT_BYTES=str(200 * 1024 * 1024),
        LOG_LEVEL="WARNING",
    )
    worker = FetcherWorker(env=env, log_dir=base).start()
    try:
        worker.wait_ready()
        await pipeline.prime(worker)
        await pipeline.mark()
        assert worker.process is not None
        idle_rss = rss_kib(worker.process.pid, "VmRSS")
        started = time.perf_counter()
        await publish_all(bootstrap, transcripts)
        await wait_all_ready(pipeline, transcripts, worker)
        elapsed = time.perf_counter() - started
        peak = rss_kib(worker.process.pid, "VmHWM")
        return {
            "case": label,
            "transcripts": count,
            "bytes_each": size,
            "concurrency": concurrency,
            "seconds": round(elapsed, 2),
            "transcripts_per_second": round(count / elapsed, 2),
            "mb_per_second": round(count * size / elapsed / 1e6, 2),
            "idle_rss_mib": round(idle_rss / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1),
        }
    finally:
        worker.stop()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", type=int, default=200, help="how many 100 kB transcripts")
    parser.add_argument("--medium", type=int, default=20, help="how many 5 MB transcripts")
    parser.add_argument("--large-bytes", type=int, default=50_000_000, help="size of the RSS case")
    parser.add_argument("--concurrency", type=int, default=2, help="FETCHER_CONCURRENCY")
    args = parser.parse_args()
    configure_logging(LoggingSettings(log_level="WARNING"))
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    with tempfile.TemporaryDirectory(prefix="fetcher-bench-") as scratch:
        work = Path(scratch)
        sim_process, sim = start_sim(work)
        try:
            results = [
                await measure(bootstrap, sim, work, "100kB", args.small, 100_000, args.concurrency),
                await measure(bootstrap, sim, work, "5MB", args.medium, 5_000_000, args.concurrency),
                await measure(bootstrap, sim, work, "50MB", 1, args.large_bytes, args.concurrency),
            ]
        finally:
            sim_process.terminate()
            sim_process.wait(timeout=30)
    print(f"broker {bootstrap}, {os.cpu_count()} CPUs, python {sys.version.split()[0]}")
    header = (
        "case",
        "transcripts",
        "seconds",
        "transcripts_per_second",
        "mb_per_second",
        "idle_rss_mib",
        "peak_rss_mib",
    )
    print("  ".join(f"{h:>22}" for h in header))
    for row in results:
        print("  ".join(f"{row[h]!s:>22}" for h in header))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
