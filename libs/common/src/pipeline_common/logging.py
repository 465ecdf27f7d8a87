"""Structured logging: one JSON object per line on stderr, for our code and for the libraries underneath.

structlog renders our events; the standard library's records (aiokafka, faust, uvicorn) go through the same
processor chain, so an operator's log pipeline sees one format. ``LOG_FORMAT=console`` gives a readable form.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor

from pipeline_common.settings import LogFormat, LoggingSettings

_REDACTED = "**********"
# Keys whose values must never reach a log line, whoever passes them.
_SECRET_KEYS = frozenset(
    {"api_key", "authorization", "password", "secret", "signature", "token", "webhook_secret", "webhook-signature"}
)


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    for key in list(event_dict):
        if key.lower() in _SECRET_KEYS:
            event_dict[key] = _REDACTED
    return event_dict


def configure_logging(settings: LoggingSettings | None = None, *, service: str | None = None) -> None:
    """Set up structlog and the standard library's root logger. Safe to call more than once."""
    settings = settings or LoggingSettings()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if service is not None:
        structlog.contextvars.bind_contextvars(service=service)
    renderer: Processor
    if settings.log_format is LogFormat.JSON:
        renderer = structlog.processors.JSONRenderer()
        shared.append(structlog.processors.format_exc_info)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        # filter_by_level first: an event below the logger's level is dropped before any other processor runs
        # (the stdlib logger would drop it anyway, but only after the whole chain, timestamp included, had run).
        # Only here: the standard library's own records are filtered by their logger before they reach us.
        processors=[structlog.stdlib.filter_by_level, *shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(settings.log_level)


def get_logger(name: str) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger
