from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import pytest

from pipeline_common.settings import ConfigError, load_settings
from recall_sim.__main__ import main
from recall_sim.config import Endpoint
from recall_sim.settings import DEV_API_KEY, SimSettings
from tests.support.waiting import wait_for_sync

SIM_VARIABLES = [name for name in os.environ if name.startswith("RECALL_SIM_")]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in SIM_VARIABLES:
        monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.unit
def test_settings_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("RECALL_SIM_PORT", "9099")
    clean_env.setenv("RECALL_SIM_API_KEY", "sim-secret-key-xyz")
    clean_env.setenv("RECALL_SIM_WEBHOOK_URL", "http://127.0.0.1:8080/webhooks/recall")
    clean_env.setenv("RECALL_SIM_WEBHOOK_SECRET", "whsec_YQ==, whsec_Yg==")
    clean_env.setenv("RECALL_SIM_WEBHOOK_EVENTS", "recording.done,transcript.done")
    clean_env.setenv("RECALL_SIM_TIME_SCALE", "0.01")
    clean_env.setenv("RECALL_SIM_FAULTS", '{"endpoints": {"create_transcript": {"error_rate": 0.1}}}')
    settings = load_settings(SimSettings)
    assert settings.recall_sim_port == 9099
    config = settings.runtime_config()
    assert config.webhook_secrets == ["whsec_YQ==", "whsec_Yg=="]
    assert config.webhook_events == ["recording.done", "transcript.done"]
    assert config.time_scale == 0.01
    assert settings.recall_sim_faults.endpoints[Endpoint.CREATE_TRANSCRIPT].error_rate == 0.1
    assert "sim-secret-key-xyz" not in repr(settings)


@pytest.mark.unit
def test_defaults_work_out_of_the_box(clean_env: pytest.MonkeyPatch) -> None:
    settings = load_settings(SimSettings)
    assert (settings.recall_sim_port, settings.recall_sim_api_key.get_secret_value()) == (8081, DEV_API_KEY)
    assert settings.runtime_config().transcript_limit == 10


@pytest.mark.unit
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (
            "RECALL_SIM_WEBHOOK_SECRET",
            "v1,whsec_abc",
            "RECALL_SIM_WEBHOOK_SECRET: entry 1 does not start with 'whsec_'",
        ),
        ("RECALL_SIM_PORT", "70000", "RECALL_SIM_PORT"),
        ("RECALL_SIM_FAULTS", '{"endpoints": {"nope": {}}}', "RECALL_SIM_FAULTS"),
        ("RECALL_SIM_EMPTY_TRANSCRIPT_RATIO", "2", "RECALL_SIM_EMPTY_TRANSCRIPT_RATIO"),
    ],
)
def test_bad_settings_name_the_variable(clean_env: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(SimSettings)
    assert message in str(caught.value)
    assert "whsec_abc" not in str(caught.value)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.integration
@pytest.mark.slow
def test_python_dash_m_serves_on_the_configured_port(clean_env: pytest.MonkeyPatch) -> None:
    port = _free_port()
    env = {**os.environ, "RECALL_SIM_PORT": str(port), "RECALL_SIM_API_KEY": "main-test-key", "LOG_FORMAT": "json"}
    process = subprocess.Popen(
        [sys.executable, "-m", "recall_sim"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                return False

        wait_for_sync(healthy, timeout=20, interval=0.05, message="recall_sim answering")
        response = httpx.get(
            f"http://127.0.0.1:{port}/api/v1/transcript/", headers={"Authorization": "Token main-test-key"}
        )
        assert response.json() == {"next": None, "previous": None, "results": []}
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert b"main-test-key" not in stderr
    assert b'"event": "starting recall simulator"' in stderr


@pytest.mark.unit
def test_bad_configuration_exits_2(clean_env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    clean_env.setenv("RECALL_SIM_PORT", "not-a-port")
    assert main() == 2
    assert "RECALL_SIM_PORT" in capsys.readouterr().err
