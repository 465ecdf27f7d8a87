from __future__ import annotations

import pytest

from pipeline_common.settings import (
    ConfigError,
    KafkaSettings,
    LoggingSettings,
    RecallApiSettings,
    TranscriptStoreSettings,
    WebhookSettings,
    load_settings,
)

pytestmark = pytest.mark.unit


class ServiceSettings(KafkaSettings, WebhookSettings, LoggingSettings, RecallApiSettings, TranscriptStoreSettings):
    pass


SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "KAFKA_BOOTSTRAP_SERVERS",
        "RECALL_WEBHOOK_SECRET",
        "RECALL_API_KEY",
        "RECALL_API_BASE_URL",
        "RECALL_REGION",
        "LOG_LEVEL",
        "LOG_FORMAT",
        "TRANSCRIPT_STORE_URL",
        "KAFKA_TOPIC_REPLICATION_FACTOR",
    ):
        monkeypatch.delenv(name, raising=False)


def test_reads_the_design_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "10.0.0.1:9092, broker-2:19092")
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", f"{SECRET},whsec_b2xkc2VjcmV0")
    monkeypatch.setenv("RECALL_API_KEY", "key-123")
    monkeypatch.setenv("RECALL_REGION", "eu-central-1")
    monkeypatch.setenv("TRANSCRIPT_STORE_URL", "s3://bucket/prefix")
    settings = load_settings(ServiceSettings)
    assert settings.kafka_bootstrap_servers == ["10.0.0.1:9092", "broker-2:19092"]
    assert [secret.get_secret_value() for secret in settings.recall_webhook_secret] == [
        SECRET,
        "whsec_b2xkc2VjcmV0",
    ]
    assert settings.recall_base_url == "https://eu-central-1.recall.ai"
    assert settings.transcript_store_url == "s3://bucket/prefix"
    assert settings.aiokafka_connection_kwargs()["bootstrap_servers"] == "10.0.0.1:9092,broker-2:19092"


def test_base_url_overrides_region(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_API_BASE_URL", "http://127.0.0.1:8081/")
    monkeypatch.setenv("RECALL_REGION", "us-east-1")
    assert load_settings(RecallApiSettings).recall_base_url == "http://127.0.0.1:8081"


def test_secrets_never_appear_in_repr_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("RECALL_API_KEY", "very-secret-key")
    settings = load_settings(ServiceSettings)
    assert SECRET not in repr(settings) and "very-secret-key" not in repr(settings)
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", "v1,not-a-secret-but-sensitive")
    with pytest.raises(ConfigError) as caught:
        load_settings(ServiceSettings)
    assert "not-a-secret-but-sensitive" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("KAFKA_BOOTSTRAP_SERVERS", "", "KAFKA_BOOTSTRAP_SERVERS: must name at least one host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "localhost", "KAFKA_BOOTSTRAP_SERVERS: 'localhost' is not host:port"),
        ("KAFKA_BOOTSTRAP_SERVERS", "h:99999", "KAFKA_BOOTSTRAP_SERVERS: 'h:99999' is not host:port"),
        ("RECALL_WEBHOOK_SECRET", "v1,abc", "RECALL_WEBHOOK_SECRET: entry 1 does not start with 'whsec_'"),
        ("RECALL_WEBHOOK_SECRET", f"{SECRET},oops", "RECALL_WEBHOOK_SECRET: entry 2 does not start with 'whsec_'"),
        ("RECALL_WEBHOOK_SECRET", " , ", "RECALL_WEBHOOK_SECRET: must hold at least one secret"),
        ("RECALL_REGION", "mars-1", "RECALL_REGION: Input should be"),
        ("RECALL_API_BASE_URL", "ftp://x", "RECALL_API_BASE_URL: must be an http(s) URL"),
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL: must be one of"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT: Input should be 'json' or 'console'"),
        ("TRANSCRIPT_STORE_URL", "/tmp/x", "TRANSCRIPT_STORE_URL: must be file:///absolute/path or s3://"),
        ("KAFKA_TOPIC_REPLICATION_FACTOR", "0", "KAFKA_TOPIC_REPLICATION_FACTOR: Input should be greater"),
        ("KAFKA_TOPIC_REPLICATION_FACTOR", "x" * 10_000, "KAFKA_TOPIC_REPLICATION_FACTOR: Input should be a valid"),
    ],
)
def test_bad_values_name_the_variable_and_why(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(ServiceSettings)
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 500  # an oversized value is not echoed back


def test_missing_required_secret_is_named() -> None:
    with pytest.raises(ConfigError, match="RECALL_WEBHOOK_SECRET: Field required"):
        load_settings(ServiceSettings)
