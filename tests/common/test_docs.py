"""The public contract documents (docs/asyncapi.yaml, docs/schemas/*.json) are generated from the code, checked in,
structurally valid AsyncAPI 3 / JSON Schema, and describe what the producers really write."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from devkit import docs
from pipeline_common.cloudevents import CloudEventAttributes, build_headers
from pipeline_common.contracts import (
    FAILED_EVENT_TYPE,
    READY_EVENT_TYPE,
    FailureReason,
    TranscriptFailed,
    TranscriptReady,
)
from pipeline_common.dlq import dlq_headers
from pipeline_common.recall.events import WebhookEvent
from pipeline_common.topics import DAY_MS, DLQ_SERVICES, REGISTRY, TRANSCRIPTS_FAILED, TRANSCRIPTS_READY, dlq_topic

pytestmark = pytest.mark.unit

ID = re.compile(r"^[A-Za-z0-9_\-]+$")


@pytest.fixture(scope="module")
def asyncapi() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((docs.DOCS_DIR / docs.ASYNCAPI_FILE).read_text(encoding="utf-8"))
    return document


def schema_file(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((docs.DOCS_DIR / docs.SCHEMAS_DIR / f"{name}.json").read_text("utf-8"))
    return schema


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"only local refs are expected, got {ref}"
    node: Any = document
    for raw in ref[2:].split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"$ref {ref} does not resolve (no {part!r})"
        node = node[part]
    return node


def all_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in all_refs(value)]
    if isinstance(node, list):
        return [ref for item in node for ref in all_refs(item)]
    return []


def validator_for(document: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    """A validator for a schema of the AsyncAPI document (whose refs point into #/components/schemas)."""
    return jsonschema.Draft7Validator(
        {"allOf": [schema], "components": document["components"]}, format_checker=jsonschema.FormatChecker()
    )


# ------------------------------------------------------------------------------------------------ staleness
def test_checked_in_documents_are_what_the_code_generates() -> None:
    stale = docs.stale_files()
    assert not stale, "docs/ drifted from the contracts; run `make docs`:\n" + "\n".join(stale)


def test_a_stale_or_orphaned_file_is_reported_and_rewritten(tmp_path: Path) -> None:
    assert docs.main(["--docs-dir", str(tmp_path)]) == 0
    assert docs.stale_files(tmp_path) == []
    assert docs.main(["--check", "--docs-dir", str(tmp_path)]) == 0
    ready = tmp_path / "schemas" / "TranscriptReady.json"
    ready.write_text(ready.read_text().replace('"word_count"', '"words"'))
    (tmp_path / "schemas" / "Gone.json").write_text("{}")
    (tmp_path / "asyncapi.yaml").unlink()
    assert docs.stale_files(tmp_path) == [
        "asyncapi.yaml",
        "schemas/TranscriptReady.json",
        "schemas/Gone.json (no longer generated)",
    ]
    assert docs.main(["--check", "--docs-dir", str(tmp_path)]) == 1
    assert docs.main(["--docs-dir", str(tmp_path)]) == 0
    assert docs.stale_files(tmp_path) == []
    assert not (tmp_path / "schemas" / "Gone.json").exists()


def test_output_is_deterministic() -> None:
    assert docs.render_files() == docs.render_files()
    text = docs.render_files()[docs.ASYNCAPI_FILE]
    assert text.startswith(docs.HEADER)
    assert yaml.safe_dump(yaml.safe_load(text), sort_keys=True, allow_unicode=True, width=120) == text.removeprefix(
        docs.HEADER
    )


# --------------------------------------------------------------------------------------- AsyncAPI structure
def test_the_document_is_structurally_valid_asyncapi_3(asyncapi: dict[str, Any]) -> None:
    assert asyncapi["asyncapi"] == "3.0.0"
    assert asyncapi["info"]["title"] and asyncapi["info"]["version"]
    for server in asyncapi["servers"].values():
        assert server["host"] and server["protocol"] == "kafka"
    assert asyncapi["channels"] and asyncapi["operations"]
    for channel_id, channel in asyncapi["channels"].items():
        assert ID.match(channel_id), channel_id
        assert channel["address"], f"channel {channel_id} has no address"
        assert channel["messages"], f"channel {channel_id} has no messages"
        for message_id, message in channel["messages"].items():
            assert ID.match(message_id)
            target = resolve(asyncapi, message["$ref"]) if "$ref" in message else message
            assert "payload" in target, f"message {message_id} of {channel_id} has no payload"
    for operation_id, operation in asyncapi["operations"].items():
        assert ID.match(operation_id), operation_id
        assert operation["action"] in {"send", "receive"}
        channel_ref = operation["channel"]["$ref"]
        assert channel_ref.startswith("#/channels/")
        channel = resolve(asyncapi, channel_ref)
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are messages of its own channel.
            assert message["$ref"].startswith(f"{channel_ref}/messages/")
            assert resolve(asyncapi, message["$ref"]) in channel["messages"].values()
    for message in asyncapi["components"]["messages"].values():
        assert message["bindings"]["kafka"]["key"]["type"] == "string"
        if "headers" in message:
            assert message["headers"]["type"] == "object"


def test_every_ref_resolves(asyncapi: dict[str, Any]) -> None:
    refs = all_refs(asyncapi)
    assert len(refs) > 30
    for ref in refs:
        resolve(asyncapi, ref)
    for name in ("TranscriptReady", "TranscriptFailed", "WebhookEvent"):
        schema = schema_file(name)
        for ref in all_refs(schema):
            resolve(schema, ref)


def test_every_schema_is_a_valid_json_schema(asyncapi: dict[str, Any]) -> None:
    for schema in asyncapi["components"]["schemas"].values():
        jsonschema.Draft7Validator.check_schema(schema)
    for message in asyncapi["components"]["messages"].values():
        jsonschema.Draft7Validator.check_schema(message["payload"])
        jsonschema.Draft7Validator.check_schema(message.get("headers", {}))
    for name in ("TranscriptReady", "TranscriptFailed", "WebhookEvent"):
        schema = schema_file(name)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_a_broken_reference_is_caught(asyncapi: dict[str, Any]) -> None:
    broken = copy.deepcopy(asyncapi)
    broken["operations"]["fetcher-send-transcripts-ready"]["channel"]["$ref"] = "#/channels/nope"
    with pytest.raises(AssertionError, match="does not resolve"):
        test_every_ref_resolves(broken)


# ---------------------------------------------------------------------------------- what the document says
def test_every_registry_topic_is_one_channel_with_its_layout(asyncapi: dict[str, Any]) -> None:
    channels = {channel["address"]: channel for channel in asyncapi["channels"].values()}
    assert sorted(channels) == sorted(spec.name for spec in REGISTRY)
    for spec in REGISTRY:
        kafka = channels[spec.name]["bindings"]["kafka"]
        assert kafka["topic"] == spec.name
        assert kafka["partitions"] == spec.partitions
        assert kafka["topicConfiguration"] == {
            "cleanup.policy": [spec.cleanup_policy.value],
            "retention.ms": spec.retention_ms,
        }
        (message_ref,) = channels[spec.name]["messages"].values()
        message = resolve(asyncapi, message_ref["$ref"])
        assert message["bindings"]["kafka"]["key"]["description"] == spec.key
        operations = {
            (op["action"], op["tags"][0]["name"])
            for op in asyncapi["operations"].values()
            if op["channel"]["$ref"] == f"#/channels/{docs.channel_id(spec.name)}"
        }
        assert operations == {("send", p) for p in spec.produced_by} | {("receive", c) for c in spec.consumed_by}


def test_public_events_carry_the_cloudevents_headers(asyncapi: dict[str, Any]) -> None:
    messages = asyncapi["components"]["messages"]
    written = [name for name, _ in build_headers(CloudEventAttributes(id="i", source="s", type="t", subject="k"))]
    for name in ("TranscriptReady", "TranscriptFailed", "RecordingEvent", "TranscriptEvent", "BotEvent"):
        headers = messages[name]["headers"]
        assert set(headers["properties"]) == set(docs.cloudevents_header_names())
        assert set(headers["required"]) == set(written) | {"ce_time"}
    assert "ce_subject" not in messages["OtherRecallEvent"]["headers"]["required"]
    assert messages["TranscriptReady"]["headers"]["properties"]["ce_type"]["const"] == READY_EVENT_TYPE
    assert messages["TranscriptFailed"]["headers"]["properties"]["ce_type"]["const"] == FAILED_EVENT_TYPE
    assert messages["TranscriptReady"]["payload"] == {"$ref": "#/components/schemas/TranscriptReady"}
    assert messages["TranscriptFailed"]["payload"] == {"$ref": "#/components/schemas/TranscriptFailed"}
    assert messages["RecordingEvent"]["payload"] == {"$ref": "#/components/schemas/WebhookEvent"}
    channels = {channel["address"]: channel for channel in asyncapi["channels"].values()}
    for spec in (TRANSCRIPTS_READY, TRANSCRIPTS_FAILED):
        assert channels[spec.name]["tags"] == [{"name": "public"}]


def test_dead_letters_document_the_dlq_headers(asyncapi: dict[str, Any]) -> None:
    added = dlq_headers([("ce_id", b"x")], reason="r", service="s", topic="t", partition=0, offset=1)
    for service in DLQ_SERVICES:
        spec = dlq_topic(service)
        channel = asyncapi["channels"][docs.channel_id(spec.name)]
        (message_ref,) = channel["messages"].values()
        headers = resolve(asyncapi, message_ref["$ref"])["headers"]
        assert headers["required"] == [name for name, _ in added if name.startswith("dlq-")]


def test_the_documented_examples_match_their_schemas(asyncapi: dict[str, Any]) -> None:
    checked = 0
    for name, message in asyncapi["components"]["messages"].items():
        for example in message.get("examples", []):
            payload_errors = list(validator_for(asyncapi, message["payload"]).iter_errors(example["payload"]))
            header_errors = list(validator_for(asyncapi, message["headers"]).iter_errors(example["headers"]))
            assert not payload_errors, f"{name}: {payload_errors[0].message}"
            assert not header_errors, f"{name}: {header_errors[0].message}"
            checked += 1
    assert checked >= 6


# ------------------------------------------------------------------------------------------ JSON Schemas
def test_transcript_ready_events_validate_against_the_published_schema() -> None:
    validator = jsonschema.Draft202012Validator(
        schema_file("TranscriptReady"), format_checker=jsonschema.FormatChecker()
    )
    event = docs.example_ready()
    validator.validate(event.model_dump(mode="json"))
    validator.validate(json.loads(event.model_dump_json()))  # exactly what the fetcher writes
    minimal = TranscriptReady.model_validate(
        {
            "recording_id": "rec_1",
            "transcript_id": "tr_1",
            "provider": None,
            "word_count": 0,
            "speech_duration_seconds": 0,
            "raw": {
                "uri": "file:///t/raw.json",
                "sha256": "0" * 64,
                "size_bytes": 2,
                "content_type": "application/json",
            },
            "readable": {
                "uri": "file:///t/readable.json",
                "sha256": "1" * 64,
                "size_bytes": 2,
                "content_type": "application/json",
            },
            "completed_at": "2025-01-01T00:00:00Z",
            "ready_at": "2025-01-01T00:00:01Z",
        }
    )
    validator.validate(json.loads(minimal.model_dump_json()))
    # A field added by a later release does not break a consumer that validates with this schema.
    validator.validate({**event.model_dump(mode="json"), "added_later": True})


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda e: e.pop("raw"), "'raw' is a required property"),
        (lambda e: e["raw"].update(sha256="not-hex"), "does not match"),
        (lambda e: e.update(word_count=-1), "less than the minimum"),
        (lambda e: e.update(schema_version=2), "1 was expected"),
        (lambda e: e.update(attempt=11), "is not valid under any of the given schemas"),
    ],
)
def test_the_schema_rejects_what_the_model_rejects(change: Any, complaint: str) -> None:
    validator = jsonschema.Draft202012Validator(schema_file("TranscriptReady"))
    event = docs.example_ready().model_dump(mode="json")
    change(event)
    errors = [error.message for error in validator.iter_errors(event)]
    assert any(complaint in message for message in errors), errors
    with pytest.raises(ValueError, match="validation error"):
        TranscriptReady.model_validate(event)


def test_transcript_failed_and_webhook_examples_validate() -> None:
    failed = jsonschema.Draft202012Validator(schema_file("TranscriptFailed"))
    failed.validate(json.loads(docs.example_failed().model_dump_json()))
    assert TranscriptFailed.model_validate(docs.example_failed().model_dump(mode="json")) == docs.example_failed()
    assert list(failed.iter_errors({"recording_id": "r", "reason": "bored", "attempts": [], "failed_at": "x"}))
    webhook = jsonschema.Draft202012Validator(schema_file("WebhookEvent"))
    for event in ("recording.done", "transcript.done", "transcript.failed", "bot.done", "audio_mixed.done"):
        body = docs.example_webhook(event)
        webhook.validate(body)
        assert WebhookEvent.model_validate(body).event == event


# ------------------------------------------------------------------------------------------------- the guide
def test_the_guide_says_what_the_registry_and_the_contracts_say() -> None:
    guide = (docs.DOCS_DIR / "consuming-transcripts.md").read_text(encoding="utf-8")
    for spec, model in ((TRANSCRIPTS_READY, "TranscriptReady"), (TRANSCRIPTS_FAILED, "TranscriptFailed")):
        days = spec.retention_ms // DAY_MS
        row = f"| `{spec.name}` | {spec.key} | {spec.partitions} | {days} days | `{model}` JSON (UTF-8) |"
        assert row in guide, f"docs/consuming-transcripts.md: the {spec.name} row should read {row}"
    assert f"| `ce_type` | `{READY_EVENT_TYPE}` | `{FAILED_EVENT_TYPE}` |" in guide
    for reason in FailureReason:
        assert f"`{reason.value}`" in guide, f"the guide does not list the failure reason {reason.value}"
    for field in TranscriptReady.model_fields:
        assert f"`{field}`" in guide or field in {"raw", "readable", "renditions"}, f"the guide omits {field}"
    for link in ("asyncapi.yaml", "schemas/TranscriptReady.json", "schemas/TranscriptFailed.json"):
        assert f"]({link})" in guide and (docs.DOCS_DIR / link).is_file()
    assert (docs.ROOT / "examples" / "consume_transcripts.py").is_file()
