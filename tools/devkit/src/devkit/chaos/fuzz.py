"""The "bad input at scale" pass: hypothesis-generated requests against the running ingest."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devkit import stack
from devkit.chaos.options import INGEST_TOPICS, Options, log
from devkit.kafka import end_offsets, read_topics
from pipeline_common.webhooks import sign_webhook

FUZZ_FAMILIES = ("bot", "participant_events", "audio_mixed", "meeting_metadata", "calendar")
FUZZ_HEADER_NAMES = (
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "content-type",
    "traceparent",
    "x-forwarded-for",
    "transfer-encoding",
)
FUZZ_OK_STATUSES = frozenset({200, 400, 401, 404, 405, 413, 415, 422})


async def fuzz_ingest(
    ingest_url: str, bootstrap: str, options: Options, recall_ids: set[str] | None = None
) -> dict[str, Any]:
    """Hypothesis-generated requests against the running ingest: raw bytes, broken signatures and headers, validly
    signed events. Counts what was tried and answered; checks that only validly signed Recall events were written
    (every new message on the recall.* topics is one of them, and their number is the number accepted), and that no
    request got a 5xx other than the documented 503 (Kafka unavailable)."""
    before = await end_offsets(bootstrap, INGEST_TOPICS)
    report = await asyncio.to_thread(run_hypothesis, ingest_url, options)
    written = await read_topics(bootstrap, INGEST_TOPICS, start=before)
    problems: list[str] = report.pop("problems")
    signed_ok: dict[str, bytes] = report.pop("signed_ok")
    late = [record for record in written if record.ce_id in (recall_ids or set())]
    written = [record for record in written if record not in late]
    report["late_recall_redeliveries_written"] = len(late)  # a duplicate delivery by Recall, not the fuzzer's
    for record in written:
        body = signed_ok.get(record.ce_id or "")
        if body is None:
            problems.append(
                f"{record.topic}@{record.offset}: written but never sent validly signed (ce_id {record.ce_id})"
            )
        elif body != record.value:
            problems.append(f"{record.topic}@{record.offset}: bytes differ from the validly signed body")
    if len(written) != report["accepted"]:
        problems.append(f"{len(written)} new messages on the recall.* topics, {report['accepted']} requests accepted")
    report["written"] = len(written)
    report["problems"] = problems
    log(
        f"fuzz: {report['requests']} requests, statuses {report['statuses']}, accepted {report['accepted']}, "
        f"written {len(written)}, problems {len(problems)}"
    )
    return report


def run_hypothesis(ingest_url: str, options: Options) -> dict[str, Any]:
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from hypothesis import strategies as st

    secret = stack.dev_webhook_secret()
    statuses: Counter[int] = Counter()
    by_kind: dict[str, Counter[int]] = defaultdict(Counter)
    problems: list[str] = []
    signed_ok: dict[str, bytes] = {}
    accepted: list[tuple[bytes, dict[str, str]]] = []
    counts = {"accepted": 0, "duplicates": 0, "not_sent": 0}
    paths = ["/webhooks/recall"]
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        spec = client.get("/openapi.json")
        if spec.status_code == 200:
            paths = sorted(spec.json().get("paths", {})) or paths

        header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=80)
        junk_headers = st.dictionaries(
            st.one_of(st.sampled_from(FUZZ_HEADER_NAMES), st.from_regex(r"\Ax-[a-z0-9-]{1,20}\Z")),
            header_text,
            max_size=6,
        )
        json_values = st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
            max_leaves=12,
        )
        ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,40}\Z")
        event_names = st.from_regex(r"\A[a-z_]{1,20}\Z")

        @st.composite
        def recall_event(draw: st.DrawFn, consumed: bool) -> dict[str, Any]:
            """A well-formed event. ``consumed``: a recording/transcript event (only ever sent broken)."""
            family = (
                draw(st.sampled_from(("recording", "transcript"))) if consumed else draw(st.sampled_from(FUZZ_FAMILIES))
            )
            name = draw(event_names)
            data: dict[str, Any] = {"data": {"code": name, "sub_code": None, "updated_at": "2025-01-01T00:00:00Z"}}
            if family in ("recording", "transcript"):
                data["recording"] = {"id": draw(ids), "metadata": {}}
            if family == "transcript":
                data["transcript"] = {"id": draw(ids), "metadata": {}}
            if family == "bot" or draw(st.booleans()):
                data["bot"] = {"id": draw(ids), "metadata": {}}
            elif family not in ("recording", "transcript"):
                data[family] = {"id": draw(ids)}
            return {"event": f"{family}.{name}", "data": data, "fuzz": draw(json_values)}

        mutations = st.sampled_from(
            (
                "flip_body",
                "append_body",
                "other_id",
                "shift_timestamp_small",
                "stale_timestamp",
                "future_timestamp",
                "garble_signature",
                "drop_signature",
                "drop_id",
                "drop_timestamp",
                "wrong_secret",
                "v2_signature",
                "empty_signature",
                "non_numeric_timestamp",
            )
        )

        # Unsigned requests that look the part: a JSON content type and webhook headers with junk in them, so that
        # they reach the signature check rather than stop at the content type.
        forged_headers = st.fixed_dictionaries(
            {"content-type": st.sampled_from(("application/json", "application/json; charset=utf-8"))},
            optional={
                "webhook-id": header_text,
                "webhook-timestamp": st.one_of(
                    header_text, st.integers(-(2**40), 2**40).map(str), st.just(str(int(time.time())))
                ),
                "webhook-signature": st.one_of(header_text, header_text.map(lambda text: f"v1,{text}")),
            },
        )
        requests = st.one_of(
            st.tuples(st.just("raw_bytes"), st.binary(max_size=2048), junk_headers, st.none()),
            st.tuples(st.just("raw_bytes_forged"), st.binary(max_size=2048), forged_headers, junk_headers),
            st.tuples(
                st.just("junk_json_forged"),
                json_values.map(lambda v: json.dumps(v).encode()),
                forged_headers,
                junk_headers,
            ),
            st.tuples(st.just("signed_then_broken"), recall_event(consumed=True), st.just({}), mutations),
            st.tuples(st.just("signed_then_broken"), recall_event(consumed=False), st.just({}), mutations),
            st.tuples(st.just("signed_not_recall"), json_values, st.just({}), st.none()),
            # A valid delivery with one header value replaced by raw latin-1 bytes ("\xb2" is "²": isdigit(), not
            # int()) or an out-of-range timestamp: always a 4xx, never a 5xx (issue 14).
            st.tuples(
                st.just("signed_bad_header_value"),
                recall_event(consumed=False),
                st.sampled_from(("webhook-id", "webhook-timestamp", "webhook-signature")),
                st.one_of(
                    st.sampled_from((b"\xb2", b"\xb9\xb2\xb3", b"999999999999", b"1\xb2", b"v1,\xb2")),
                    st.binary(min_size=1, max_size=20).filter(
                        lambda raw: all(0x20 <= b < 0x7F or b >= 0xA0 for b in raw)
                    ),
                ),
            ),
            st.tuples(st.just("signed_valid"), recall_event(consumed=False), st.just({}), st.none()),
            st.tuples(st.just("replay_accepted"), st.integers(0, 2**31), st.just({}), st.none()),
            st.tuples(st.just("too_large"), st.integers(1, 3), st.just({}), st.none()),
            st.tuples(
                st.just("other_paths"),
                st.sampled_from(("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "POST")),
                st.one_of(st.sampled_from(paths), st.from_regex(r"\A/([a-z._-][a-z/._-]{0,30})?\Z")),
                st.binary(max_size=256),
            ),
        )

        def sign(
            body: bytes, webhook_id: str, moment: datetime | None = None, secrets: list[str] | None = None
        ) -> dict[str, str]:
            headers = sign_webhook(secrets or [secret], webhook_id, body, timestamp=moment)
            headers["Content-Type"] = "application/json"
            return headers

        def broken(body: bytes, mutation: str) -> tuple[bytes, dict[str, str]]:
            webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
            headers = sign(body, webhook_id)
            if mutation == "flip_body":
                index = len(body) // 2
                body = body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]
            elif mutation == "append_body":
                body = body + b" "
            elif mutation == "other_id":
                headers["webhook-id"] = f"msg_fuzz_{uuid.uuid4().hex}"
            elif mutation == "shift_timestamp_small":
                headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) + 1)
            elif mutation == "stale_timestamp":
                headers = sign(body, webhook_id, datetime.now(UTC) - timedelta(minutes=6))
            elif mutation == "future_timestamp":
                headers = sign(body, webhook_id, datetime.now(UTC) + timedelta(minutes=6))
            elif mutation == "garble_signature":
                signature = headers["webhook-signature"]
                headers["webhook-signature"] = signature[:-4] + ("AAAA" if not signature.endswith("AAAA") else "BBBB")
            elif mutation == "drop_signature":
                del headers["webhook-signature"]
            elif mutation == "drop_id":
                del headers["webhook-id"]
            elif mutation == "drop_timestamp":
                del headers["webhook-timestamp"]
            elif mutation == "wrong_secret":
                headers = sign(body, webhook_id, secrets=["whsec_" + "A" * 43 + "="])
            elif mutation == "v2_signature":
                headers["webhook-signature"] = headers["webhook-signature"].replace("v1,", "v2,")
            elif mutation == "empty_signature":
                headers["webhook-signature"] = ""
            elif mutation == "non_numeric_timestamp":
                headers["webhook-timestamp"] = "soon"
            return body, headers

        def send(
            kind: str, method: str, path: str, body: bytes, headers: Mapping[str, str | bytes]
        ) -> httpx.Response | None:
            try:
                raw = [
                    (name.encode(), value if isinstance(value, bytes) else value.encode("latin-1"))
                    for name, value in headers.items()
                ]
                response = client.request(method, path, content=body, headers=raw)
            except (httpx.LocalProtocolError, httpx.InvalidURL, UnicodeEncodeError):
                counts["not_sent"] += 1  # the client itself refused to send it (invalid header bytes, path)
                return None
            except httpx.TransportError as error:
                problems.append(f"{kind}: connection failed ({type(error).__name__})")
                return None
            statuses[response.status_code] += 1
            by_kind[kind][response.status_code] += 1
            documented_503 = response.status_code == 503 and _error_code(response) in ("kafka_unavailable", "not_ready")
            if response.status_code >= 500 and not documented_503:
                problems.append(f"{kind} {method} {path}: {response.status_code} {response.text[:120]}")
            elif response.status_code not in FUZZ_OK_STATUSES and response.status_code != 503:
                problems.append(f"{kind} {method} {path}: unexpected {response.status_code}")
            return response

        @seed(options.seed)
        @settings(
            max_examples=options.fuzz_examples,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(requests)
        def one(request: tuple[str, Any, Any, Any]) -> None:
            kind, first, second, third = request
            if kind in ("raw_bytes", "raw_bytes_forged", "junk_json_forged"):
                headers = {**(third or {}), **second}  # the forged webhook headers win over random ones
                response = send(kind, "POST", "/webhooks/recall", first, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}: an unsigned body was accepted ({response.status_code})")
            elif kind == "signed_then_broken":
                body, headers = broken(json.dumps(first).encode(), third)
                response = send(f"{kind}:{third}", "POST", "/webhooks/recall", body, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}:{third}: accepted ({response.status_code})")
            elif kind == "signed_not_recall":
                # A verified JSON object is always accepted (routed to recall.other.events); anything else is not.
                body = json.dumps(first).encode()
                webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
                response = send(kind, "POST", "/webhooks/recall", body, sign(body, webhook_id))
                if isinstance(first, dict):
                    signed_ok[webhook_id] = body
                    if response is not None and response.status_code == 200:
                        counts["accepted"] += 1
                    elif response is not None and response.status_code != 503:
                        problems.append(f"{kind}: a verified JSON object was refused ({response.status_code})")
                elif response is not None and response.is_success:
                    problems.append(f"{kind}: not a JSON object, accepted: {body[:80]!r}")
            elif kind == "signed_bad_header_value":
                body = json.dumps(first).encode()
                headers = {**sign(body, f"msg_fuzz_{uuid.uuid4().hex}"), second: third}
                response = send(kind, "POST", "/webhooks/recall", body, headers)
                if response is not None and response.is_success:
                    problems.append(f"{kind}: {second}={third!r} accepted ({response.status_code})")
            elif kind == "signed_valid":
                body = json.dumps(first).encode()
                webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
                headers = sign(body, webhook_id)
                signed_ok[webhook_id] = body
                response = send(kind, "POST", "/webhooks/recall", body, headers)
                if response is not None and response.status_code == 200:
                    counts["accepted"] += 1
                    accepted.append((body, headers))
                elif response is not None and response.status_code != 503:
                    problems.append(f"{kind}: a validly signed event was refused ({response.status_code})")
            elif kind == "replay_accepted":
                if not accepted:
                    return
                body, headers = accepted[first % len(accepted)]
                fresh = sign(body, headers["webhook-id"])  # Recall re-signs each attempt
                response = send(kind, "POST", "/webhooks/recall", body, fresh)
                if response is not None and response.status_code == 200:
                    if response.json().get("status") == "accepted":
                        counts["accepted"] += 1  # written again: allowed, and counted
                    else:
                        counts["duplicates"] += 1
            elif kind == "too_large":
                body = b'{"event":"bot.x","pad":"' + b"x" * (1024 * 1024 * first) + b'"}'
                send(kind, "POST", "/webhooks/recall", body, sign(body, f"msg_fuzz_{uuid.uuid4().hex}"))
            else:
                method, path, body = first, second, third
                if method in ("GET", "HEAD", "OPTIONS"):
                    body = b""
                headers = {"Content-Type": "application/json"}
                response = send(kind, method, path, body, headers)
                if response is not None and response.is_success and path == "/webhooks/recall" and method == "POST":
                    problems.append("other_paths: an unsigned POST was accepted")

        one()
    return {
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "by_kind": {kind: {str(k): v for k, v in sorted(c.items())} for kind, c in sorted(by_kind.items())},
        "accepted": counts["accepted"],
        "duplicates_answered": counts["duplicates"],
        "not_sent_by_client": counts["not_sent"],
        "paths": paths,
        "problems": problems,
        "signed_ok": signed_ok,
    }


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        value = body.get("error") or body.get("status")
        return str(value) if value is not None else None
    return None
