"""Typed failures of the Recall API and of Recall's payloads.

Every failure of a call to Recall becomes a :class:`RecallApiError` whose :attr:`~RecallApiError.kind` says what to do
about it, so services decide policy from data rather than from status codes scattered around:

- ``retryable``: 429 (with its ``Retry-After``), 408, 409 from a duplicate ``Idempotency-Key`` still in flight, 5xx,
  timeouts, connection errors, a response lost in flight, an unreadable 2xx body, an expired download URL.
- ``operator``: 401, 402 from the API. Retry slowly and make it loud; a person has to fix a key or a bill.
- ``firewall``: 403 from the API. Recall's firewall blocked the request (its errors reference: e.g. a body that
  contains localhost or an IP address), not our credentials. Retrying the same request rarely helps: retry a few
  times, then give up on it, loudly.
- ``terminal``: any other 4xx, including the 10-transcripts-per-recording limit; retrying the same request will not
  help.

Messages name the method, the path (never a query string: pre-signed URLs carry credentials) and the status, plus at
most a short excerpt of Recall's answer. The API key never appears in them.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Final


class InvalidRecallPayload(ValueError):
    """A webhook body, API response or transcript that is not the shape Recall documents. ``str()`` says why."""


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"
    OPERATOR = "operator"
    FIREWALL = "firewall"
    TERMINAL = "terminal"


class RecallApiError(Exception):
    """A failed call to Recall. ``kind`` drives policy; ``status`` is the HTTP status when there was one."""

    kind: ErrorKind = ErrorKind.TERMINAL

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        method: str | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status = status
        self.retry_after = retry_after
        self.method = method
        self.path = path
        self.detail = detail
        self.message = message
        super().__init__(self._render())

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.RETRYABLE

    def _render(self) -> str:
        parts = []
        if self.method and self.path:
            parts.append(f"{self.method} {self.path}")
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        head = " -> ".join(parts)
        text = f"{head}: {self.message}" if head else self.message
        if self.detail:
            text += f" ({self.detail})"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g}s"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind.value!r}, status={self.status!r}, "
            f"retry_after={self.retry_after!r}, message={str(self)!r})"
        )


class RecallRetryableError(RecallApiError):
    kind = ErrorKind.RETRYABLE


class RecallOperatorError(RecallApiError):
    kind = ErrorKind.OPERATOR


class RecallTerminalError(RecallApiError):
    kind = ErrorKind.TERMINAL


# Retryable
class RecallRateLimited(RecallRetryableError):
    """429. ``retry_after`` holds Recall's ``Retry-After`` in seconds when it sent one."""


class RecallServerError(RecallRetryableError):
    """5xx (Recall documents 502, 503 and 504 as retryable; 500 and 507 are treated alike)."""


class RecallRequestTimeout(RecallRetryableError):
    """The call timed out (connect, read, write or pool), or Recall answered 408."""


class RecallConnectionError(RecallRetryableError):
    """Recall could not be reached (DNS, refused, reset before the request was sent)."""


class RecallResponseLost(RecallRetryableError):
    """The connection closed after the request was sent and before an answer arrived: the request may have been
    processed. Retry a create with the same ``Idempotency-Key`` to get the original answer."""


class RecallIdempotencyConflict(RecallRetryableError):
    """409: a request with the same ``Idempotency-Key`` is still being processed. Retry shortly, same key."""


class RecallInvalidResponse(RecallRetryableError):
    """A 2xx whose body is not what Recall documents (a proxy's HTML page, truncated JSON, a foreign ``next``)."""


class RecallDownloadExpired(RecallRetryableError):
    """The pre-signed download URL was refused (401/403): it expired. Retrieve the transcript again for a new URL."""


# Operator problems
class RecallUnauthorized(RecallOperatorError):
    """401: the API key is missing, wrong, or for another region."""


class RecallPaymentRequired(RecallOperatorError):
    """402: the workspace's billing needs attention."""


class RecallFirewallBlocked(RecallApiError):
    """403 from the API: Recall's firewall blocked the request (not bad credentials). Its own kind: bounded retries."""

    kind = ErrorKind.FIREWALL


#: The name this error had when 403 was taken for a credentials problem.
RecallForbidden = RecallFirewallBlocked


# Terminal
class RecallBadRequest(RecallTerminalError):
    """400/422: Recall rejected the request (a provider option, a recording that is not done, ...)."""


class RecallNotFound(RecallTerminalError):
    """404: no such recording or transcript (or it was deleted)."""


class RecallTranscriptLimitReached(RecallTerminalError):
    """A 4xx that mentions the 10-transcripts-per-recording limit: terminal for the recording, not just the attempt."""


class RecallDownloadTooLarge(RecallTerminalError):
    """The download is larger than the caller's ``max_bytes``."""


class RecallDownloadNotAllowed(RecallTerminalError):
    """The download URL is not http(s) or its host is not in the allowed list (no SSRF)."""


class RecallInvalidArgument(RecallTerminalError, ValueError):
    """A caller-supplied id or option cannot be sent to Recall (e.g. an id with a ``/`` in it)."""


_LIMIT_WORDS: Final = re.compile(r"\b(limit|maximum|max|exceed(?:ed|s)?|at most|too many)\b", re.IGNORECASE)
_TRANSCRIPT_WORD: Final = re.compile(r"transcript", re.IGNORECASE)


def mentions_transcript_limit(text: str) -> bool:
    """Recall does not document the limit's status or body: any 4xx saying "transcript" and "limit" counts."""
    return bool(_TRANSCRIPT_WORD.search(text) and _LIMIT_WORDS.search(text))


def error_for_status(
    status: int,
    *,
    method: str,
    path: str,
    detail: str | None,
    retry_after: float | None,
) -> RecallApiError:
    """The typed error for an HTTP error status from the API (not from a download URL)."""
    cls: type[RecallApiError]
    text = detail or ""
    if status == 429:
        cls, message = RecallRateLimited, "rate limited"
    elif status == 408:
        cls, message = RecallRequestTimeout, "request timeout"
    elif status >= 500:
        cls, message = RecallServerError, "server error"
    elif 400 <= status < 500 and mentions_transcript_limit(text):
        # Undocumented status and body: any 4xx (but 429) that mentions the limit is terminal for the recording.
        cls, message = RecallTranscriptLimitReached, "transcript limit for this recording reached"
    elif status == 409:
        cls, message = RecallIdempotencyConflict, "conflict: a request with this Idempotency-Key is in flight"
    elif status == 401:
        cls, message = RecallUnauthorized, "unauthorized: check RECALL_API_KEY and the region"
    elif status == 402:
        cls, message = RecallPaymentRequired, "payment required"
    elif status == 403:
        cls, message = RecallFirewallBlocked, "blocked by Recall's firewall (not a credentials problem)"
    elif status == 404:
        cls, message = RecallNotFound, "not found"
    elif 400 <= status < 500:
        cls, message = RecallBadRequest, "rejected"
    else:
        cls, message = RecallInvalidResponse, "unexpected status"
    return cls(message, status=status, retry_after=retry_after, method=method, path=path, detail=detail)
