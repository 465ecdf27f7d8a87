from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook

from pipeline_common.webhooks import (
    VerificationFailure,
    WebhookSecretError,
    WebhookVerificationFailed,
    WebhookVerifier,
    sign_webhook,
)

pytestmark = pytest.mark.unit

SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
OLD_SECRET = "whsec_" + base64.b64encode(b"the-previous-secret-of-32-bytes!").decode()
BODY = b'{"event":"recording.done","data":{"recording":{"id":"r1","metadata":{}}}}'


def test_a_signed_delivery_verifies() -> None:
    headers = sign_webhook([SECRET], "msg_1", BODY)
    verified = WebhookVerifier([SECRET]).verify(BODY, headers)
    assert verified.webhook_id == "msg_1"
    assert not verified.legacy_headers
    assert abs((verified.timestamp - datetime.now(UTC)).total_seconds()) < 5


def test_signatures_match_the_reference_library() -> None:
    moment = datetime.now(UTC)
    ours = sign_webhook([SECRET], "msg_1", BODY, timestamp=moment)
    assert ours["webhook-signature"] == Webhook(SECRET).sign("msg_1", moment, BODY.decode())
    Webhook(SECRET).verify(BODY, ours)  # and the library accepts what we sign


def test_legacy_svix_headers_verify() -> None:
    headers = sign_webhook([SECRET], "msg_2", BODY, legacy_headers=True)
    assert set(headers) == {"svix-id", "svix-timestamp", "svix-signature"}
    assert WebhookVerifier([SECRET]).verify(BODY, headers).legacy_headers


def test_rotation_accepts_either_secret_and_multi_signature_headers() -> None:
    verifier = WebhookVerifier([SECRET, OLD_SECRET])
    assert verifier.verify(BODY, sign_webhook([OLD_SECRET], "m", BODY)).webhook_id == "m"
    both = sign_webhook(["whsec_" + base64.b64encode(b"unknown-secret").decode(), SECRET], "m", BODY)
    assert len(both["webhook-signature"].split()) == 2
    assert WebhookVerifier([SECRET]).verify(BODY, both).webhook_id == "m"


def test_header_names_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in sign_webhook([SECRET], "m", BODY).items()}
    WebhookVerifier([SECRET]).verify(BODY, headers)


def reason(body: bytes, headers: dict[str, str], secrets: list[str] | None = None) -> VerificationFailure:
    with pytest.raises(WebhookVerificationFailed) as caught:
        WebhookVerifier(secrets or [SECRET]).verify(body, headers)
    assert SECRET not in str(caught.value)
    return caught.value.reason


def test_tampered_body_is_a_bad_signature() -> None:
    headers = sign_webhook([SECRET], "m", BODY)
    assert reason(BODY.replace(b"r1", b"r2"), headers) is VerificationFailure.BAD_SIGNATURE


def test_wrong_secret_is_a_bad_signature() -> None:
    assert reason(BODY, sign_webhook([OLD_SECRET], "m", BODY)) is VerificationFailure.BAD_SIGNATURE


def test_changed_webhook_id_is_a_bad_signature() -> None:
    headers = sign_webhook([SECRET], "m", BODY) | {"webhook-id": "other"}
    assert reason(BODY, headers) is VerificationFailure.BAD_SIGNATURE


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        (timedelta(minutes=-6), VerificationFailure.STALE_TIMESTAMP),
        (timedelta(minutes=6), VerificationFailure.FUTURE_TIMESTAMP),
    ],
)
def test_timestamps_more_than_five_minutes_off_are_refused(shift: timedelta, expected: VerificationFailure) -> None:
    headers = sign_webhook([SECRET], "m", BODY, timestamp=datetime.now(UTC) + shift)
    assert reason(BODY, headers) is expected


def test_timestamps_within_tolerance_pass() -> None:
    headers = sign_webhook([SECRET], "m", BODY, timestamp=datetime.now(UTC) - timedelta(minutes=4))
    WebhookVerifier([SECRET]).verify(BODY, headers)


@pytest.mark.parametrize("missing", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(missing: str) -> None:
    headers = sign_webhook([SECRET], "m", BODY)
    del headers[missing]
    assert reason(BODY, headers) is VerificationFailure.MISSING_HEADERS


def test_mixed_legacy_and_standard_halves_are_missing_headers() -> None:
    headers = sign_webhook([SECRET], "m", BODY)
    headers["svix-signature"] = headers.pop("webhook-signature")
    assert reason(BODY, headers) is VerificationFailure.MISSING_HEADERS


@pytest.mark.parametrize("timestamp", ["abc", "-5", "1e9", "nan", "9" * 40, "1.5"])
def test_malformed_timestamps(timestamp: str) -> None:
    headers = sign_webhook([SECRET], "m", BODY) | {"webhook-timestamp": timestamp}
    assert reason(BODY, headers) is VerificationFailure.MALFORMED_TIMESTAMP


@pytest.mark.parametrize("signature", ["garbage", "v1", "v1,", "v1,abc,def", "v1,!!!!", ("v1,AAAA " * 40).strip()])
def test_malformed_signature_headers(signature: str) -> None:
    headers = sign_webhook([SECRET], "m", BODY) | {"webhook-signature": signature}
    assert reason(BODY, headers) is VerificationFailure.MALFORMED_SIGNATURE


def test_a_signature_with_the_wrong_version_does_not_count() -> None:
    headers = sign_webhook([SECRET], "m", BODY)
    headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
    assert reason(BODY, headers) is VerificationFailure.BAD_SIGNATURE


def test_non_utf8_body_is_refused_with_its_reason() -> None:
    body = b"\xff\xfe"
    headers = sign_webhook([SECRET], "m", b"x")
    assert reason(body, headers) is VerificationFailure.BODY_NOT_UTF8


def test_oversized_body_with_a_valid_signature_still_verifies() -> None:
    body = b'{"pad":"' + b"x" * 2_000_000 + b'"}'
    WebhookVerifier([SECRET]).verify(body, sign_webhook([SECRET], "m", body))


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("v1,whsec_abc", "secret 1 does not start with 'whsec_' (it looks like a signature, not a secret)"),
        ("abc", "secret 1 does not start with 'whsec_'"),
        ("whsec_", "secret 1 is empty"),
        ("whsec_not base64!", "secret 1: the part after 'whsec_' is not base64"),
    ],
)
def test_misconfigured_secrets_are_named_not_echoed(secret: str, message: str) -> None:
    with pytest.raises(WebhookSecretError) as caught:
        WebhookVerifier([secret])
    assert message in str(caught.value)
    if len(secret) > 6:
        assert secret not in str(caught.value)


def test_no_secret_at_all_is_refused() -> None:
    with pytest.raises(WebhookSecretError, match="at least one"):
        WebhookVerifier([])


def test_repr_hides_secrets() -> None:
    assert repr(WebhookVerifier([SECRET, OLD_SECRET])) == "WebhookVerifier(secrets=2)"


@settings(max_examples=300)
@given(
    body=st.binary(max_size=256),
    headers=st.dictionaries(
        st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature", "svix-id", "x"]),
        st.text(max_size=80),
    ),
)
def test_arbitrary_input_never_verifies_and_fails_only_with_the_documented_error(
    body: bytes, headers: dict[str, str]
) -> None:
    with pytest.raises(WebhookVerificationFailed):
        WebhookVerifier([SECRET]).verify(body, headers)


@pytest.mark.parametrize(
    "timestamp",
    [
        "999999999999",  # year out of datetime's range
        "²",  # str.isdigit() is true, int() refuses it
        "１７００００００００",  # fullwidth digits: int() accepts them, Recall never sends them
        "٣",
        "0" * 12,
    ],
)
def test_timestamps_that_used_to_raise_value_error_are_refused(timestamp: str) -> None:
    headers = sign_webhook([SECRET], "m", BODY) | {"webhook-timestamp": timestamp}
    assert reason(BODY, headers) in {
        VerificationFailure.MALFORMED_TIMESTAMP,
        VerificationFailure.STALE_TIMESTAMP,
        VerificationFailure.FUTURE_TIMESTAMP,
    }


# Header values as Starlette hands them over: any latin-1 text (each byte of the raw header is one character).
_latin1_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=40)
_digitish = st.sampled_from(["²", "³", "¹", "999999999999", "0", "-0", " 1 ", "1" * 12, "\x00", "٣"])


@settings(max_examples=400)
@given(
    name=st.sampled_from(["webhook-id", "webhook-timestamp", "webhook-signature"]),
    value=st.one_of(_latin1_text, _digitish, st.tuples(_digitish, _latin1_text).map("".join)),
)
def test_any_header_value_of_a_signed_delivery_fails_only_with_the_documented_error(name: str, value: str) -> None:
    headers = sign_webhook([SECRET], "msg_1", BODY) | {name: value}
    try:
        WebhookVerifier([SECRET]).verify(BODY, headers)
    except WebhookVerificationFailed:
        return
    # Only an unchanged (or whitespace-equivalent) value may still verify.
    original = sign_webhook([SECRET], "msg_1", BODY)[name]
    assert value.strip() == original
