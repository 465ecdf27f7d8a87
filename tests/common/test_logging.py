from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from pipeline_common import logging as pipeline_logging
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


def test_an_event_below_the_level_runs_no_processor(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    redact_secrets = pipeline_logging.redact_secrets

    def counting_redact_secrets(logger: Any, method: str, event_dict: Any) -> Any:
        calls.append(event_dict["event"])
        return redact_secrets(logger, method, event_dict)

    # A processor in the middle of the chain configure_logging builds (after the context, level, name and timestamp).
    monkeypatch.setattr(pipeline_logging, "redact_secrets", counting_redact_secrets)
    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON), service="ingest")
    log = get_logger("pipeline.test")
    log.debug("below the level", api_key="do-not-print")
    assert calls == []
    log.info("at the level", api_key="do-not-print")
    assert calls == ["at the level"]
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["event"] == "at the level"
    assert record["level"] == "info"
    assert record["service"] == "ingest"
    assert record["api_key"] == "**********"
    assert "timestamp" in record
    assert structlog.get_config()["processors"][0] is structlog.stdlib.filter_by_level


def test_an_event_below_the_level_reaches_no_processor_at_all(capsys: pytest.CaptureFixture[str]) -> None:
    # Not even the first one: the logger asks the level before it builds the event dict (ingest's per-request DEBUG
    # line cost ~9 us with filter_by_level dropping it inside the chain).
    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON), service="ingest")
    seen: list[tuple[str, str]] = []

    def first(_logger: Any, method: str, event_dict: Any) -> Any:
        seen.append((method, event_dict["event"]))
        return event_dict

    structlog.configure(processors=[first, *structlog.get_config()["processors"]])
    log = get_logger("pipeline.test.first")
    log.debug("below the level", n=1)
    log.log(logging.DEBUG, "below the level too")
    assert seen == []
    log.info("at the level", api_key="do-not-print")
    log.log(logging.WARNING, "above it")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("failed")
    assert seen == [("info", "at the level"), ("warning", "above it"), ("exception", "failed")]
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["at the level", "above it", "failed"]
    assert lines[0]["api_key"] == "**********"


def test_debug_events_are_logged_at_debug_level(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(LoggingSettings(log_level="DEBUG", log_format=LogFormat.JSON))
    get_logger("pipeline.test").debug("now shown", n=1)
    (line,) = capsys.readouterr().err.splitlines()
    assert json.loads(line) | {"timestamp": None} == {
        "event": "now shown",
        "n": 1,
        "level": "debug",
        "logger": "pipeline.test",
        "timestamp": None,
    }


def test_http_client_request_lines_are_quiet_at_info(capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 14 item 10: httpx logs "HTTP Request: GET <full pre-signed URL>" at INFO.
    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON))
    logging.getLogger("httpx").info("HTTP Request: GET %s", "https://s3.example/t.json?X-Amz-Signature=abc123")
    logging.getLogger("httpcore.connection").info("connect_tcp.started host='s3.example'")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "text",
    [
        "https://bucket.s3.amazonaws.com/t.json?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=abc123",
        "http://127.0.0.1:8081/api/v1/download/t-1?token=abc123",
        "GET https://us-east-1.recall.ai/api/v1/download/x?token=abc123 failed",
        "Authorization: Token abc123",
        "headers={'authorization': 'Token abc123'}",
    ],
)
def test_query_strings_and_authorization_are_redacted_wherever_they_appear(
    capsys: pytest.CaptureFixture[str], text: str
) -> None:
    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON))
    get_logger("pipeline.test").warning(text, url=text, nested={"detail": [text]})
    logging.getLogger("some.library").warning("library: %s", text)
    err = capsys.readouterr().err
    assert "abc123" not in err
    assert "AKIAEXAMPLE" not in err
    assert len([json.loads(line) for line in err.splitlines()]) == 2


def test_faust_worker_logging_setup_keeps_our_json_handler(capsys: pytest.CaptureFixture[str]) -> None:
    # Issue 14 item 11: faust's Worker clears the root handlers and installs colorlog after configure_logging.
    from mode.utils.logging import setup_logging

    configure_logging(LoggingSettings(log_level="INFO", log_format=LogFormat.JSON), service="transcriber")
    # What faust.Worker does on start with app.conf.logging_config (worker_main sets it to this).
    setup_logging(loglevel="INFO", logfile=None, logging_config=pipeline_logging.faust_logging_config())
    logging.getLogger("faust.worker").info("[^Worker]: Ready")
    get_logger("transcriber").info("ours", n=1)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["[^Worker]: Ready", "ours"]
    assert all(line["service"] == "transcriber" for line in lines)
