"""Ingest's metric labels come from bounded sets, whatever Recall sends."""

from __future__ import annotations

import pytest

from ingest.metrics import COUNTED_EVENT_TYPES, IngestMetrics, event_type_label

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("event_type", "label"),
    [
        ("recording.done", "recording.done"),
        ("transcript.failed", "transcript.failed"),
        ("recording.processing", "recording.other"),
        ("bot.status_change", "bot.other"),
        ("participant_events.join", "other"),
        ("x" * 500, "other"),
    ],
)
def test_event_types_map_to_a_bounded_label(event_type: str, label: str) -> None:
    assert event_type_label(event_type) == label


def test_recording_done_is_counted_from_zero_so_its_absence_is_a_series_at_zero() -> None:
    metrics = IngestMetrics()
    value = metrics.registry.get_sample_value("ingest_webhook_events_total", {"event_type": "recording.done"})
    assert value == 0.0
    assert "recording.done" in COUNTED_EVENT_TYPES
