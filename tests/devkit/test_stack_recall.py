"""Issue 14 item 12: ``make up`` honours the user's Recall settings and says which Recall and secret it uses."""

from __future__ import annotations

import pytest

from devkit import stack

pytestmark = pytest.mark.unit

USER_SECRET = "whsec_dXNlci1zZWNyZXQtMDEyMzQ1Njc4OWFiY2RlZg=="
SIM = "http://127.0.0.1:8081"


def test_the_users_webhook_secret_is_given_to_the_simulator_and_ingest() -> None:
    target = stack.recall_target({"RECALL_WEBHOOK_SECRET": USER_SECRET}, SIM)
    assert target.simulator
    assert target.webhook_secret == USER_SECRET
    assert "RECALL_WEBHOOK_SECRET" in target.describe()
    assert USER_SECRET not in target.describe()


def test_without_a_secret_the_simulators_development_secret_is_used_and_said_so() -> None:
    target = stack.recall_target({}, SIM)
    assert target.simulator
    assert target.webhook_secret == stack.dev_webhook_secret()
    assert target.api_key == stack.DEV_API_KEY
    assert "development secret" in target.describe()
    assert "simulator" in target.describe()


def test_a_local_recall_compatible_server_is_used_not_replaced_by_the_simulator() -> None:
    env = {
        "RECALL_API_BASE_URL": "http://127.0.0.1:9999",
        "RECALL_API_KEY": "k-local",
        "RECALL_WEBHOOK_SECRET": USER_SECRET,
    }
    target = stack.recall_target(env, SIM)
    assert not target.simulator
    assert (target.base_url, target.api_key, target.webhook_secret) == ("http://127.0.0.1:9999", "k-local", USER_SECRET)
    assert "http://127.0.0.1:9999" in target.describe()
    assert "k-local" not in target.describe()


def test_the_processes_get_what_the_target_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RECALL_API_BASE_URL", raising=False)
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", USER_SECRET)
    processes = {process.name: process for process in stack.processes(stack.ephemeral_profile("unit"))}
    assert processes["recall_sim"].env["RECALL_SIM_WEBHOOK_SECRET"] == USER_SECRET
    assert processes["ingest"].env["RECALL_WEBHOOK_SECRET"] == USER_SECRET
    monkeypatch.setenv("RECALL_API_BASE_URL", "http://localhost:9999")
    monkeypatch.setenv("RECALL_API_KEY", "k-local")
    processes = {process.name: process for process in stack.processes(stack.ephemeral_profile("unit"))}
    assert "recall_sim" not in processes
    assert processes["fetcher"].env["RECALL_API_BASE_URL"] == "http://localhost:9999"


@pytest.mark.parametrize(
    ("env", "missing"),
    [
        (
            {"RECALL_API_BASE_URL": "https://us-west-2.recall.ai", "RECALL_WEBHOOK_SECRET": USER_SECRET},
            "RECALL_API_KEY",
        ),
        ({"RECALL_API_BASE_URL": "https://us-west-2.recall.ai", "RECALL_API_KEY": "k"}, "RECALL_WEBHOOK_SECRET"),
    ],
)
def test_an_incomplete_real_recall_configuration_stops_with_the_missing_variable(
    env: dict[str, str], missing: str
) -> None:
    with pytest.raises(SystemExit, match=missing):
        stack.recall_target(env, SIM)
