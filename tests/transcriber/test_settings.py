from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline_common.settings import ConfigError, load_settings
from transcriber.settings import TranscriberSettings

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("chain", "expected"),
    [
        ('{"recallai_async": {}}', "TRANSCRIBER_PROVIDERS: Input should be a valid list"),
        ("[]", "TRANSCRIBER_PROVIDERS: List should have at least 1 item"),
        ("not json", "TRANSCRIBER_PROVIDERS: is not valid JSON"),
        (
            '[{"recallai_async": {}}, {"whisper_async": {}}]',
            "TRANSCRIBER_PROVIDERS entry 2: unknown provider 'whisper_async'",
        ),
        ('[{"recallai_async": {}, "deepgram_async": {}}]', "TRANSCRIBER_PROVIDERS entry 1: exactly one provider key"),
        ('["recallai_async"]', "TRANSCRIBER_PROVIDERS entry 1: a provider configuration must be an object"),
        ('[{"deepgram_async": 5}]', "TRANSCRIBER_PROVIDERS entry 1: the options of deepgram_async must be an object"),
        ("[" + ",".join(['{"recallai_async": {}}'] * 11) + "]", "at most 10 providers"),
    ],
)
def test_a_bad_provider_chain_names_the_entry(monkeypatch: pytest.MonkeyPatch, chain: str, expected: str) -> None:
    monkeypatch.setenv("TRANSCRIBER_PROVIDERS", chain)
    with pytest.raises(ConfigError) as caught:
        load_settings(TranscriberSettings)
    assert expected in str(caught.value)


def test_the_documented_chain_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TRANSCRIBER_PROVIDERS",
        '[{"recallai_async":{"language_code":"auto"}},{"deepgram_async":{"model":"nova-3","language":"multi"}}]',
    )
    monkeypatch.setenv("TRANSCRIBER_RETRY_SAME_PROVIDER_ON", "provider_connection_failed")
    settings = load_settings(TranscriberSettings)
    assert [p.provider_name for p in settings.transcriber_providers] == ["recallai_async", "deepgram_async"]
    assert settings.transcriber_providers[1].to_request() == {
        "deepgram_async": {"model": "nova-3", "language": "multi"}
    }
    assert settings.transcriber_retry_same_provider_on == ["provider_connection_failed"]
    assert settings.transcriber_diarization.model_dump(mode="json") == {"use_separate_streams_when_available": True}


def test_the_worker_refuses_to_start_with_a_bad_chain_or_no_api_key() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECALL_", "TRANSCRIBER_"))}
    bad_chain = subprocess.run(
        [sys.executable, "-m", "transcriber"],
        env={**env, "RECALL_API_KEY": "k", "TRANSCRIBER_PROVIDERS": "[{}]"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad_chain.returncode == 2
    assert "TRANSCRIBER_PROVIDERS entry 1: exactly one provider key is required, got 0" in bad_chain.stderr
    no_key = subprocess.run([sys.executable, "-m", "transcriber"], env=env, capture_output=True, text=True, timeout=60)
    assert no_key.returncode == 2
    assert "RECALL_API_KEY: Field required" in no_key.stderr


def test_the_manifests_data_directory_reaches_faust(monkeypatch: pytest.MonkeyPatch) -> None:
    # deploy/base/config/transcriber.env sets APP_DATADIR to the faust-data volume, as for the fetcher; the
    # transcriber read only TRANSCRIBER_DATA_DIR and wrote faust's data into /tmp.
    monkeypatch.setenv("RECALL_API_KEY", "test-key")
    monkeypatch.setenv("APP_DATADIR", "/var/lib/faust")
    settings = load_settings(TranscriberSettings)
    assert settings.faust_worker().data_dir == "/var/lib/faust"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", "greater than or equal to 1"), ("65", "less than or equal to 64"), ("eight", "valid integer")],
)
def test_a_bad_concurrency_fails_at_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("TRANSCRIBER_CONCURRENCY", value)
    with pytest.raises(ConfigError) as caught:
        load_settings(TranscriberSettings)
    assert "TRANSCRIBER_CONCURRENCY:" in str(caught.value) and expected in str(caught.value)
