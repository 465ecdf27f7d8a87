"""Fixtures of the fetcher's tests: one simulator, download proxy and fetcher worker per test module (a worker takes
seconds to start and join its group), unique ids per test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fetcher.support import (
    DownloadProxy,
    FetcherWorker,
    Pipeline,
    aws_credentials,
    s3_server,
    worker_env,
)
from tests.support.recall_sim import RunningSim, run_recall_sim, sim_settings

MAX_TRANSCRIPT_BYTES = 2 * 1024 * 1024


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A real S3-compatible server (moto's standalone server) on loopback, for the whole session."""
    with aws_credentials(), s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def sim() -> Iterator[RunningSim]:
    with run_recall_sim(sim_settings(recall_sim_transcript_delay_seconds=0.01)) as running:
        yield running


@pytest.fixture(scope="module")
def proxy(sim: RunningSim) -> Iterator[DownloadProxy]:
    """Download URLs point at this proxy in front of the simulator (it passes through unless told otherwise)."""
    with DownloadProxy(sim.base_url).running() as running:
        httpx.patch(f"{sim.base_url}/admin/config", json={"public_url": running.url}, timeout=10).raise_for_status()
        yield running


def start_worker(
    tmp_path_factory: pytest.TempPathFactory, bootstrap: str, sim: RunningSim, store_url: str, **extra: str
) -> FetcherWorker:
    base = tmp_path_factory.mktemp("fetcher")
    env = worker_env(
        bootstrap=bootstrap,
        sim=sim,
        store_url=store_url,
        app_id=f"fetcher-test-{uuid.uuid4().hex[:10]}",
        data_dir=base / "data",
        **extra,
    )
    worker = FetcherWorker(env=env, log_dir=base).start()
    worker.wait_ready()
    asyncio.run(Pipeline(bootstrap, sim).prime(worker))
    return worker


@pytest.fixture(scope="module")
def file_store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("store")


@pytest.fixture(scope="module")
def file_worker(
    tmp_path_factory: pytest.TempPathFactory,
    kafka_bootstrap: str,
    sim: RunningSim,
    proxy: DownloadProxy,
    file_store_root: Path,
) -> Iterator[FetcherWorker]:
    worker = start_worker(
        tmp_path_factory,
        kafka_bootstrap,
        sim,
        file_store_root.as_uri(),
        FETCHER_MAX_TRANSCRIPT_BYTES=str(MAX_TRANSCRIPT_BYTES),
        FETCHER_MAX_ATTEMPTS="4",
        FETCHER_STORE_PROVIDER_DATA="true",
    )
    yield worker
    worker.stop()


@pytest.fixture
async def pipeline(kafka_bootstrap: str, sim: RunningSim) -> Pipeline:
    driver = Pipeline(kafka_bootstrap, sim)
    await driver.mark()
    return driver


@pytest.fixture
async def clean_faults(sim: RunningSim, proxy: DownloadProxy) -> None:
    await sim.admin.clear_faults()
    proxy.reset()
