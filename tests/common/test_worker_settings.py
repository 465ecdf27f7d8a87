"""The retry and limit variables both workers read, declared once (pipeline_common.worker_settings)."""

from __future__ import annotations

import pytest

from fetcher.settings import FetcherSettings
from pipeline_common.settings import ConfigError, load_settings
from pipeline_common.worker import RetrySchedule, WorkerLimits
from pipeline_common.worker_settings import WORKER_VARIABLES, WorkerSettings, worker_variables
from transcriber.settings import TranscriberSettings

pytestmark = pytest.mark.unit

WORKERS = [pytest.param(TranscriberSettings, id="transcriber"), pytest.param(FetcherSettings, id="fetcher")]
REQUIRED = {"RECALL_API_KEY": "k" * 20, "RECALL_BASE_URL": "https://us-east-1.recall.ai"}


@pytest.fixture(autouse=True)
def _required(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("kind", WORKERS)
def test_every_worker_variable_is_read_under_the_workers_prefix(
    monkeypatch: pytest.MonkeyPatch, kind: type[WorkerSettings]
) -> None:
    prefix = kind.WORKER_PREFIX.upper()
    monkeypatch.setenv(f"{prefix}_RETRY_BASE_SECONDS", "2.5")
    monkeypatch.setenv(f"{prefix}_MAX_INTERNAL_ERRORS", "7")
    monkeypatch.setenv(f"{prefix}_RETENTION_SECONDS", "60")
    settings = load_settings(kind)
    assert settings.own(RetrySchedule).retry_base_seconds == 2.5
    assert settings.limits().max_internal_errors == 7
    assert settings.limits().retention_seconds == 60
    declared = {name.removeprefix(f"{kind.WORKER_PREFIX}_") for name in type(settings).model_fields}
    assert set(WORKER_VARIABLES) <= declared


@pytest.mark.parametrize("kind", WORKERS)
@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [
        ("RETRY_BASE_SECONDS", "0", "greater than 0"),
        ("MAX_INTERNAL_ERRORS", "101", "less than or equal to 100"),
        ("FAULT_PROBABILITY", "1.5", "less than or equal to 1"),
        ("SWEEP_SECONDS", "soon", "valid number"),
    ],
)
def test_a_bad_worker_variable_names_the_prefixed_variable(
    monkeypatch: pytest.MonkeyPatch, kind: type[WorkerSettings], name: str, value: str, problem: str
) -> None:
    variable = f"{kind.WORKER_PREFIX.upper()}_{name}"
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(kind)
    [line] = caught.value.problems
    assert line.startswith(f"{variable}: ")
    assert problem in line


def test_a_worker_keeps_its_own_defaults() -> None:
    assert load_settings(FetcherSettings).limits().deadline_seconds == 900.0
    assert load_settings(TranscriberSettings).limits().deadline_seconds == WorkerLimits().deadline_seconds == 1800.0


def test_a_default_for_a_variable_that_is_not_declared_is_refused() -> None:
    with pytest.raises(TypeError, match="not worker variables: deadline"):
        worker_variables("x", deadline=1.0)
