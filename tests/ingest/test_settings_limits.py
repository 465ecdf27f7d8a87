"""Issue 14 item 3: the body cap, Kafka's request size and the consumers' parse limit agree, checked at start-up."""

from __future__ import annotations

import pytest

from ingest.settings import RECORD_OVERHEAD_BYTES, IngestSettings
from pipeline_common.recall.events import WEBHOOK_MAX_BYTES
from pipeline_common.settings import ConfigError, load_settings

pytestmark = pytest.mark.unit

SECRET = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="


def test_the_default_cap_leaves_room_for_the_record_in_kafkas_default_request_size() -> None:
    settings = IngestSettings(recall_webhook_secret=[SECRET])  # type: ignore[arg-type]
    assert settings.ingest_max_body_bytes + RECORD_OVERHEAD_BYTES <= settings.ingest_kafka_max_request_bytes
    assert settings.ingest_kafka_max_request_bytes == 1024 * 1024


def test_a_cap_kafka_cannot_take_fails_at_start_up_naming_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("INGEST_MAX_BODY_BYTES", str(1024 * 1024))
    with pytest.raises(ConfigError) as caught:
        load_settings(IngestSettings)
    assert "INGEST_MAX_BODY_BYTES" in str(caught.value)
    assert "INGEST_KAFKA_MAX_REQUEST_BYTES" in str(caught.value)
    assert SECRET not in str(caught.value)


def test_raising_both_together_is_allowed() -> None:
    settings = IngestSettings(
        recall_webhook_secret=[SECRET],  # type: ignore[arg-type]
        ingest_max_body_bytes=8 * 1024 * 1024,
        ingest_kafka_max_request_bytes=9 * 1024 * 1024,
    )
    assert settings.ingest_max_body_bytes == 8 * 1024 * 1024


def test_consumers_parse_whatever_ingest_may_be_configured_to_accept() -> None:
    largest = IngestSettings.model_fields["ingest_max_body_bytes"].metadata
    upper = next(item.le for item in largest if getattr(item, "le", None) is not None)
    assert upper <= WEBHOOK_MAX_BYTES


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("INGEST_KAFKA_PRODUCERS", "0", "greater than or equal to 1"),
        ("INGEST_KAFKA_PRODUCERS", "17", "less than or equal to 16"),
        ("INGEST_KAFKA_PRODUCERS", "many", "valid integer"),
        ("INGEST_KAFKA_LINGER_MS", "-1", "greater than or equal to 0"),
        ("INGEST_KAFKA_LINGER_MS", "1001", "less than or equal to 1000"),
        ("INGEST_KAFKA_LINGER_MS", "9" * 400, "less than or equal to 1000"),
    ],
)
def test_a_bad_producer_setting_fails_at_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv("RECALL_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(IngestSettings)
    assert f"{variable}:" in str(caught.value) and expected in str(caught.value)
    assert SECRET not in str(caught.value)
