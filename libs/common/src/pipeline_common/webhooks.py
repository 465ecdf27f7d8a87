"""Recall webhook signing and verification (Standard Webhooks / Svix scheme), over the raw body bytes.

The cryptography is the maintained ``standardwebhooks`` package's; this module gives the rest of the code one
function (:meth:`WebhookVerifier.verify`), one error type with a machine-readable reason, the legacy ``svix-*``
header names, and several secrets at once during a rotation. Secrets never appear in reprs or error messages.
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Final

from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET_PREFIX: Final = "whsec_"  # noqa: S105 - a prefix, not a secret
TOLERANCE_SECONDS: Final = 5 * 60
_HEADER_SETS: Final = (
    ("webhook-id", "webhook-timestamp", "webhook-signature"),
    ("svix-id", "svix-timestamp", "svix-signature"),
)
# One or more space-separated "v<version>,<base64>" entries.
_SIGNATURE_ENTRY = re.compile(r"^v[0-9]+,[A-Za-z0-9+/=]+$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")


class VerificationFailure(StrEnum):
    MISSING_HEADERS = "missing_headers"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    STALE_TIMESTAMP = "stale_timestamp"
    FUTURE_TIMESTAMP = "future_timestamp"
    MALFORMED_SIGNATURE = "malformed_signature"
    BAD_SIGNATURE = "bad_signature"
    BODY_NOT_UTF8 = "body_not_utf8"


_MESSAGES: Final = {
    VerificationFailure.MISSING_HEADERS: "missing webhook-id, webhook-timestamp or webhook-signature header",
    VerificationFailure.MALFORMED_TIMESTAMP: "webhook-timestamp is not a Unix timestamp in seconds",
    VerificationFailure.STALE_TIMESTAMP: "webhook-timestamp is more than 5 minutes in the past",
    VerificationFailure.FUTURE_TIMESTAMP: "webhook-timestamp is more than 5 minutes in the future",
    VerificationFailure.MALFORMED_SIGNATURE: "webhook-signature is not a list of 'v1,<base64>' entries",
    VerificationFailure.BAD_SIGNATURE: "no signature matches the body with any configured secret",
    VerificationFailure.BODY_NOT_UTF8: "body is not UTF-8",
}


class WebhookVerificationFailed(Exception):
    """A webhook that must not be accepted. ``reason`` is stable (metrics, tests); ``str()`` is for people."""

    def __init__(self, reason: VerificationFailure) -> None:
        self.reason = reason
        super().__init__(_MESSAGES[reason])


class WebhookSecretError(ValueError):
    """A configured secret is not a ``whsec_<base64>`` value. The message says which one, never its value."""


@dataclass(frozen=True, slots=True)
class VerifiedWebhook:
    webhook_id: str
    timestamp: datetime
    legacy_headers: bool  # True when the delivery used the svix-* header names


def _decode_secret(secret: str, position: int) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        hint = " (it looks like a signature, not a secret)" if secret.startswith("v1,") else ""
        raise WebhookSecretError(f"secret {position} does not start with '{SECRET_PREFIX}'{hint}")
    encoded = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise WebhookSecretError(f"secret {position}: the part after '{SECRET_PREFIX}' is not base64") from None
    if not key:
        raise WebhookSecretError(f"secret {position} is empty after '{SECRET_PREFIX}'")
    return key


def _header_triplet(headers: Mapping[str, str]) -> tuple[str, str, str, bool] | None:
    lowered = {name.lower(): value for name, value in headers.items()}
    for legacy, names in enumerate(_HEADER_SETS):
        values = [lowered.get(name, "").strip() for name in names]
        if all(values):
            return values[0], values[1], values[2], bool(legacy)
    return None


class WebhookVerifier:
    """Verifies deliveries against one or more secrets (several during a rotation)."""

    def __init__(self, secrets: Iterable[SecretStr | str]) -> None:
        raw = [secret.get_secret_value() if isinstance(secret, SecretStr) else secret for secret in secrets]
        if not raw:
            raise WebhookSecretError("at least one webhook secret is required")
        self._webhooks = [Webhook(_decode_secret(secret, position)) for position, secret in enumerate(raw, 1)]

    def __repr__(self) -> str:
        return f"WebhookVerifier(secrets={len(self._webhooks)})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> VerifiedWebhook:
        """Return the delivery's id and time if ``body`` is signed by a configured secret; raise otherwise."""
        triplet = _header_triplet(headers)
        if triplet is None:
            raise WebhookVerificationFailed(VerificationFailure.MISSING_HEADERS)
        webhook_id, timestamp_header, signature_header, legacy = triplet
        # ASCII digits only: str.isdigit() is also true for "²" or "٣", which int() refuses or reads differently.
        if not _TIMESTAMP.fullmatch(timestamp_header):
            raise WebhookVerificationFailed(VerificationFailure.MALFORMED_TIMESTAMP)
        # Compare as numbers before building a datetime: a far-future value is out of datetime's range.
        skew = int(timestamp_header) - time.time()
        if skew < -TOLERANCE_SECONDS:
            raise WebhookVerificationFailed(VerificationFailure.STALE_TIMESTAMP)
        if skew > TOLERANCE_SECONDS:
            raise WebhookVerificationFailed(VerificationFailure.FUTURE_TIMESTAMP)
        timestamp = datetime.fromtimestamp(int(timestamp_header), tz=UTC)
        entries = signature_header.split()
        if not entries or len(entries) > 32 or not all(_SIGNATURE_ENTRY.match(entry) for entry in entries):
            raise WebhookVerificationFailed(VerificationFailure.MALFORMED_SIGNATURE)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookVerificationFailed(VerificationFailure.BODY_NOT_UTF8) from None
        standard_headers = {
            "webhook-id": webhook_id,
            "webhook-timestamp": timestamp_header,
            "webhook-signature": signature_header,
        }
        for webhook in self._webhooks:
            try:
                webhook.verify(body, standard_headers, json_parse=False)
            except (WebhookVerificationError, ValueError, binascii.Error):
                continue
            return VerifiedWebhook(webhook_id=webhook_id, timestamp=timestamp, legacy_headers=legacy)
        raise WebhookVerificationFailed(VerificationFailure.BAD_SIGNATURE)


def sign_webhook(
    secrets: Iterable[SecretStr | str],
    webhook_id: str,
    body: bytes,
    *,
    timestamp: datetime | None = None,
    legacy_headers: bool = False,
) -> dict[str, str]:
    """The headers Recall would send with ``body``: one ``v1`` signature per secret, space-separated."""
    moment = (timestamp or datetime.now(UTC)).astimezone(UTC)
    raw = [secret.get_secret_value() if isinstance(secret, SecretStr) else secret for secret in secrets]
    text = body.decode("utf-8")
    signatures = " ".join(
        Webhook(_decode_secret(secret, position)).sign(webhook_id, moment, text)
        for position, secret in enumerate(raw, 1)
    )
    names = _HEADER_SETS[1] if legacy_headers else _HEADER_SETS[0]
    return {names[0]: webhook_id, names[1]: str(int(moment.timestamp())), names[2]: signatures}
