"""Structured logging: one JSON object per line on stderr, for our code and for the libraries underneath.

structlog renders our events; the standard library's records (aiokafka, faust, uvicorn) go through the same
processor chain, so an operator's log pipeline sees one format. ``LOG_FORMAT=console`` gives a readable form.

Nothing secret reaches a line: values under secret-sounding keys are replaced, and in every string (our events'
values and libraries' messages alike) a URL's query string (pre-signed credentials) and an ``Authorization`` value
are redacted. The HTTP client libraries' per-request INFO lines are silenced: they carry whole URLs.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, Final

import structlog
from structlog.processors import NAME_TO_LEVEL
from structlog.typing import EventDict, Processor

from pipeline_common.settings import LogFormat, LoggingSettings

_REDACTED: Final = "**********"
# Keys whose values must never reach a log line, whoever passes them.
_SECRET_KEYS: Final = frozenset(
    {
        "api_key",
        "authorization",
        "password",
        "secret",
        "signature",
        "token",
        "webhook_secret",
        "webhook-signature",
        "aws_secret_access_key",
        "secret_access_key",
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
    }
)
# "scheme://host/path?query" -> the query goes; "Authorization: Token x" / "'authorization': 'Token x'" -> the value.
_URL_QUERY: Final = re.compile(r"(?P<url>[A-Za-z][A-Za-z0-9+.-]*://[^\s?#'\"<>]*)\?[^\s#'\"<>]*")
_AUTHORIZATION: Final = re.compile(
    r"(?P<name>authorization['\"]?\s*[:=]\s*['\"]?)(?:(?:token|bearer|basic)\s+)?[^\s'\",}]+", re.IGNORECASE
)
# Libraries that log each request with its full URL at INFO (or lower).
QUIET_LOGGERS: Final = ("httpx", "httpcore", "urllib3", "botocore", "aiobotocore", "s3transfer", "hpack")

_handler: logging.Handler | None = None


def redact_text(text: str) -> str:
    """``text`` with URL query strings and ``Authorization`` values replaced."""
    if "?" in text:
        text = _URL_QUERY.sub(lambda match: f"{match['url']}?{_REDACTED}", text)
    if "uthorization" in text or "UTHORIZATION" in text:
        text = _AUTHORIZATION.sub(lambda match: f"{match['name']}{_REDACTED}", text)
    return text


def _redact_value(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {
            key: _REDACTED if str(key).lower() in _SECRET_KEYS else _redact_value(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact_value(item, depth + 1) for item in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _REDACTED
        elif not key.startswith("_"):  # structlog's own bookkeeping (_record, _from_structlog)
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


class LevelFilteringBoundLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger, asking the stdlib logger's level first: a call below it returns before the event
    dict is built and before any processor runs (``filter_by_level`` as a processor still costs the dict, the chain
    call and a ``DropEvent`` raised and caught: ~9 us per dropped call, a per-request DEBUG line in ingest)."""

    def _proxy_to_logger(self, method_name: str, event: str | None = None, *event_args: str, **event_kw: Any) -> Any:
        if not self._logger.isEnabledFor(NAME_TO_LEVEL[method_name]):
            return None
        return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)


def _build_handler(settings: LoggingSettings, shared: list[Processor]) -> logging.Handler:
    renderer: Processor
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    return handler


def configure_logging(settings: LoggingSettings | None = None, *, service: str | None = None) -> None:
    """Set up structlog and the standard library's root logger. Safe to call more than once."""
    global _handler
    settings = settings or LoggingSettings()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        # Foreign records arrive with their message already formatted into "event": redact after that.
        redact_secrets,
    ]
    if service is not None:
        structlog.contextvars.bind_contextvars(service=service)
    if settings.log_format is LogFormat.JSON:
        # Before redaction, so a traceback's text is redacted too.
        shared.insert(-1, structlog.processors.format_exc_info)
    structlog.configure(
        # An event below the logger's level is dropped before any processor runs (the stdlib logger would drop it
        # anyway, but only after the whole chain, timestamp included, had run): by the wrapper class before the event
        # dict exists, and by filter_by_level first in the chain for a logger wrapped some other way.
        # Only here: the standard library's own records are filtered by their logger before they reach us.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=LevelFilteringBoundLogger,
        cache_logger_on_first_use=True,
    )
    _handler = _build_handler(settings, shared)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(_handler)
    root.setLevel(settings.log_level)
    quiet = max(logging.WARNING, logging.getLevelName(settings.log_level))
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(quiet)


def _configured_handler() -> logging.Handler:
    if _handler is None:
        configure_logging()
    assert _handler is not None
    return _handler


def faust_logging_config() -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for faust's ``logging_config``: faust's Worker clears the root handlers and
    applies it after :func:`configure_logging`, so it must put our handler back (not colorlog's)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"pipeline": {"()": _configured_handler}},
        "root": {"level": logging.getLevelName(logging.getLogger().level), "handlers": ["pipeline"]},
    }


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
