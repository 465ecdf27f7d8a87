"""Dead-letter queue headers: the original message travels unchanged, the error travels beside it in headers.

A DLQ record keeps the original key, value and headers, plus ``dlq-*`` headers saying where it came from and why, so
an operator can read the reason and replay it to ``dlq-source-topic``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

DLQ_PREFIX: Final = "dlq-"
MAX_REASON_BYTES: Final = 2000


def dlq_headers(
    original: Iterable[tuple[str, bytes | None]],
    *,
    reason: str,
    service: str,
    topic: str,
    partition: int,
    offset: int,
    failed_at: datetime | None = None,
) -> list[tuple[str, bytes]]:
    """The original headers (minus any earlier ``dlq-*`` ones, so a replayed-and-failed-again record is not
    ambiguous) followed by this failure's."""
    kept = [(name, value or b"") for name, value in original if not name.lower().startswith(DLQ_PREFIX)]
    moment = (failed_at or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")
    return [
        *kept,
        ("dlq-reason", reason.encode("utf-8", "replace")[:MAX_REASON_BYTES]),
        ("dlq-service", service.encode()),
        ("dlq-source-topic", topic.encode()),
        ("dlq-source-partition", str(partition).encode()),
        ("dlq-source-offset", str(offset).encode()),
        ("dlq-failed-at", moment.encode()),
    ]


def source_topic(headers: Iterable[tuple[str, bytes | None]]) -> str | None:
    """Where a DLQ record came from (the topic to replay it to)."""
    for name, value in headers:
        if name.lower() == "dlq-source-topic" and value:
            return value.decode("utf-8", "replace")
    return None


def strip_dlq_headers(headers: Iterable[tuple[str, bytes | None]]) -> list[tuple[str, bytes]]:
    """The headers to replay with: the original ones only."""
    return [(name, value or b"") for name, value in headers if not name.lower().startswith(DLQ_PREFIX)]
