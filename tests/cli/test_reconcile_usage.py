"""reconcile and backfill refuse bad input and missing configuration with exit 2 and a sentence, before touching
Kafka or Recall."""

from __future__ import annotations

from datetime import timedelta

import pytest

from pipeline_cli.reconcile.options import parse_duration
from tests.cli.conftest import invoke_sync

pytestmark = pytest.mark.unit  # the Kafka one below is integration

UNREACHABLE = {
    "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1",
    "RECALL_API_KEY": "k",
    "RECALL_API_BASE_URL": "http://127.0.0.1:1",
}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["backfill", "--since", "last tuesday"], "is not an ISO 8601 date"),
        (["backfill", "--since", "2026-11-02", "--until", "2026-11-01"], "--until must be after --since"),
        (["backfill", "--since", "2999-01-01"], "--since must be in the past"),
        (["backfill"], "Missing option '--since'"),
        (["reconcile", "--max-age", "forever"], "is not a duration"),
        (["reconcile", "--metadata", "team"], "is not KEY=VALUE"),
        (["reconcile", "--list-per-minute", "600"], "--list-per-minute"),
    ],
)
def test_bad_options_exit_2_naming_the_problem(args: list[str], says: str) -> None:
    result = invoke_sync(*args, env=UNREACHABLE)
    assert result.exit_code == 2, result.output
    assert says in result.output


def test_without_an_api_key_it_says_which_variable_is_missing() -> None:
    result = invoke_sync("reconcile", "--dry-run", env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    assert result.exit_code == 2
    assert "RECALL_API_KEY is not set" in result.output


def test_durations() -> None:
    assert parse_duration("90s") == timedelta(seconds=90)
    assert parse_duration("72h") == timedelta(hours=72)
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("30") == timedelta(seconds=30)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("-1h")


@pytest.mark.integration
@pytest.mark.parametrize("command", [["reconcile"], ["backfill", "--since", "2026-11-01"]])
def test_an_unreachable_kafka_is_exit_1_with_a_sentence_not_a_traceback(command: list[str]) -> None:
    result = invoke_sync(*command, env=UNREACHABLE)
    assert result.exit_code == 1, result.output
    assert "cannot reach Kafka at 127.0.0.1:1" in result.output
    assert "Traceback" not in result.output
