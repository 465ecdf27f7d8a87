from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from pipeline_common.logging import configure_logging, get_logger
from pipeline_common.settings import LogFormat, LoggingSettings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging points the root logger at this test's captured stderr: put the old handlers back, or later
    threads would log into a closed stream."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def test_our_events_and_library_records_are_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON), service="ingest")
    get_logger("pipeline.test").info("webhook accepted", recording_id="r-1", api_key="do-not-print")
    logging.getLogger("aiokafka").warning("library says %s", "hello")
    get_logger("pipeline.test").debug("below the level")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2
    ours, library = lines
    assert ours["event"] == "webhook accepted"
    assert ours["recording_id"] == "r-1"
    assert ours["service"] == "ingest"
    assert ours["level"] == "info"
    assert ours["api_key"] == "**********"
    assert "timestamp" in ours
    assert library["event"] == "library says hello"
    assert library["logger"] == "aiokafka"
    assert library["level"] == "warning"


def test_exceptions_are_rendered_inside_the_json(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(log_format=LogFormat.JSON))
    try:
        raise ValueError("boom")
    except ValueError:
        get_logger("pipeline.test").exception("failed")
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert "ValueError: boom" in record["exception"]
