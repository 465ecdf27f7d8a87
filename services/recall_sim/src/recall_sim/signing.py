"""The simulator's pre-signed download URLs: an HMAC over kind, transcript and expiry, checked as S3 would."""

from __future__ import annotations

import base64
import hashlib
import hmac


def signature(key: bytes, kind: str, transcript_id: str, expires: int) -> str:
    message = f"{kind}:{transcript_id}:{expires}".encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode().rstrip("=")


def storage_url(base: str, kind: str, transcript_id: str, expires: int | str, signature: str) -> str:
    return f"{base}/files/{kind}/{transcript_id}.json?X-Sim-Expires={expires}&X-Sim-Signature={signature}"


def redirects(seed: object, ratio: float, transcript_id: str) -> bool:
    """Whether this transcript's URLs live on the API host and redirect to storage (deterministic per transcript:
    every retrieve of one transcript gives the same kind of URL)."""
    if ratio <= 0:
        return False
    digest = hashlib.sha256(f"{seed}:{transcript_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32 < ratio


def check(key: bytes, now: float, kind: str, transcript_id: str, expires: str | None, given: str | None) -> str | None:
    """None if the URL is valid at ``now``; else S3's error code for it."""
    if not expires or not given or not expires.isdigit() or len(expires) > 12:
        return "AccessDenied"
    if not hmac.compare_digest(signature(key, kind, transcript_id, int(expires)).encode(), given.encode()):
        return "SignatureDoesNotMatch"
    if now > int(expires):
        return "ExpiredToken"
    return None
