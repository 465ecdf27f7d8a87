from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline_common.cloudevents import (
    CloudEventAttributes,
    CloudEventHeaderError,
    build_headers,
    header_value,
    parse_headers,
)

pytestmark = pytest.mark.unit

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def recall_event() -> CloudEventAttributes:
    return CloudEventAttributes(
        id="msg_2Lh9KRb0pzN4LePd3XiA4xKXCFX",
        source="recall.ai/webhooks",
        type="recording.done",
        time=datetime(2024, 12, 4, 23, 25, 56, tzinfo=UTC),
        subject="03d06804-0cb2-42f8-a255-5b950dde7c57",
        traceparent=TRACEPARENT,
    )


def test_binary_mode_headers_carry_every_attribute() -> None:
    headers = dict(build_headers(recall_event()))
    assert headers == {
        "ce_specversion": b"1.0",
        "ce_id": b"msg_2Lh9KRb0pzN4LePd3XiA4xKXCFX",
        "ce_source": b"recall.ai/webhooks",
        "ce_type": b"recording.done",
        "ce_time": b"2024-12-04T23:25:56Z",
        "ce_subject": b"03d06804-0cb2-42f8-a255-5b950dde7c57",
        "content-type": b"application/json",
        "traceparent": TRACEPARENT.encode(),
    }


def test_round_trip() -> None:
    assert parse_headers(build_headers(recall_event())) == recall_event()


def test_time_is_normalised_to_utc() -> None:
    attributes = CloudEventAttributes(
        id="1", source="s", type="t", time=datetime(2024, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    )
    assert dict(build_headers(attributes))["ce_time"] == b"2024-01-01T00:00:00Z"


def test_naive_time_is_refused() -> None:
    with pytest.raises(CloudEventHeaderError, match="timezone-aware"):
        build_headers(CloudEventAttributes(id="1", source="s", type="t", time=datetime(2024, 1, 1)))


def test_malformed_traceparent_is_dropped_not_propagated() -> None:
    attributes = CloudEventAttributes(id="1", source="s", type="t", traceparent="00-zz-yy-01")
    assert header_value(build_headers(attributes), "traceparent") is None


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([], "missing CloudEvents header(s): ce_specversion, ce_id, ce_source, ce_type"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s")], "missing CloudEvents header(s): ce_type"),
        ([("ce_specversion", b"0.3"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t")], "ce_specversion"),
        ([("ce_specversion", b"1.0"), ("ce_id", b"\xff"), ("ce_source", b"s"), ("ce_type", b"t")], "not UTF-8"),
        ([("ce_specversion", b"1.0"), ("ce_id", None), ("ce_source", b"s"), ("ce_type", b"t")], "has no value"),
        (
            [("ce_specversion", b"1.0"), ("ce_id", b"1"), ("ce_source", b"s"), ("ce_type", b"t"), ("ce_time", b"x")],
            "RFC 3339",
        ),
    ],
)
def test_invalid_headers_are_rejected_with_a_reason(headers: list[tuple[str, bytes | None]], reason: str) -> None:
    with pytest.raises(CloudEventHeaderError) as caught:
        parse_headers(headers)
    assert reason in str(caught.value)


@given(st.lists(st.tuples(st.text(max_size=30), st.one_of(st.none(), st.binary(max_size=64))), max_size=20))
def test_arbitrary_headers_either_parse_or_raise_the_documented_error(
    headers: list[tuple[str, bytes | None]],
) -> None:
    with contextlib.suppress(CloudEventHeaderError):
        parse_headers(headers)


def test_oversized_header_values_round_trip_without_truncation() -> None:
    big = "x" * 100_000
    parsed = parse_headers(build_headers(CloudEventAttributes(id=big, source="s", type="t")))
    assert parsed.id == big
