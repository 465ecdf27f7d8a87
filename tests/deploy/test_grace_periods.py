"""Kubernetes' terminationGracePeriodSeconds against what each service does on SIGTERM (its settings' defaults):
the kubelet's SIGKILL must not land in the middle of a shutdown that is still within its own limits."""

from __future__ import annotations

import pytest

from devkit.chaos.faults.pods import grace_seconds
from ingest.settings import IngestSettings
from pipeline_common.settings import RecallApiSettings

pytestmark = pytest.mark.unit

COMMIT_MARGIN = 10.0  # the last commit and leaving the group, on a slow broker


def default(model: type, field: str) -> float:
    return float(model.model_fields[field].default)  # type: ignore[attr-defined]


def test_ingest_has_time_to_drain_requests_and_flush_its_producer() -> None:
    # uvicorn waits up to the shutdown timeout for requests in flight, then the lifespan flushes the producer
    # within the same timeout again.
    shutdown = default(IngestSettings, "ingest_shutdown_timeout_seconds")
    assert grace_seconds("ingest") >= 2 * shutdown + 5


@pytest.mark.parametrize("service", ["transcriber", "fetcher"])
def test_a_worker_has_time_to_finish_its_recall_call_and_commit(service: str) -> None:
    # stream_wait_empty: the events in hand are finished (a Recall call is bounded by its timeout) before the commit.
    assert grace_seconds(service) >= default(RecallApiSettings, "recall_api_timeout_seconds") + COMMIT_MARGIN
