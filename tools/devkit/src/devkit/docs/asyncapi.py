"""The AsyncAPI 3.0 document: a channel, an operation and a message per topic of the registry."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from devkit.docs.headers import cloudevents_headers, dead_letter_headers
from devkit.docs.messages import message_for
from devkit.docs.model import ASYNCAPI_VERSION, KAFKA_BINDING_VERSION, MessageDoc
from devkit.docs.schemas import component_schemas
from pipeline_common.contracts import TranscriptReady
from pipeline_common.topics import (
    REGISTRY,
    TopicSpec,
)


def channel_id(topic: str) -> str:
    """An AsyncAPI channel id (``^[A-Za-z0-9_-]+$``) for a topic: ``transcripts.ready`` -> ``transcripts-ready``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", topic).strip("-")


def _operation_id(actor: str, action: str, topic: str) -> str:
    return f"{channel_id(actor)}-{action}-{channel_id(topic)}"


def _message(spec: TopicSpec, doc: MessageDoc) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": doc.name,
        "title": doc.title,
        "summary": spec.description,
        "contentType": "application/json",
        "payload": doc.payload,
        "bindings": {
            "kafka": {
                "key": {"type": "string", "description": spec.key},
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }
    if doc.ce_type is not None:
        message["headers"] = cloudevents_headers(doc)
    elif doc.dead_letter:
        message["headers"] = dead_letter_headers()
        message.pop("contentType")
    if doc.examples:
        message["examples"] = list(doc.examples)
    return message


def _channel(spec: TopicSpec, doc: MessageDoc) -> dict[str, Any]:
    configuration: dict[str, Any] = {
        "cleanup.policy": [spec.cleanup_policy.value],
        "retention.ms": spec.retention_ms,
    }
    description = (
        f"{spec.description} Key: {spec.key}. Value: {spec.value}. "
        f"Produced by {', '.join(spec.produced_by)}; consumed by {', '.join(spec.consumed_by) or 'nobody yet'}."
    )
    return {
        "address": spec.name,
        "title": spec.name,
        "description": description,
        "tags": [{"name": "public" if doc.public else "internal"}],
        "messages": {doc.name: {"$ref": f"#/components/messages/{doc.name}"}},
        "bindings": {
            "kafka": {
                "topic": spec.name,
                "partitions": spec.partitions,
                "topicConfiguration": configuration,
                "bindingVersion": KAFKA_BINDING_VERSION,
            }
        },
    }


def asyncapi_document(registry: Sequence[TopicSpec] = REGISTRY) -> dict[str, Any]:
    """The AsyncAPI 3.0 document: one channel per topic, a send operation per producer, a receive per consumer."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for spec in registry:
        doc = message_for(spec)
        if doc.name in messages:
            raise RuntimeError(f"two topics document a message called {doc.name}")
        cid = channel_id(spec.name)
        channels[cid] = _channel(spec, doc)
        messages[doc.name] = _message(spec, doc)
        message_ref = [{"$ref": f"#/channels/{cid}/messages/{doc.name}"}]
        for actor, action, verb in [
            *((producer, "send", "writes") for producer in spec.produced_by),
            *((consumer, "receive", "reads") for consumer in spec.consumed_by),
        ]:
            operations[_operation_id(actor, action, spec.name)] = {
                "action": action,
                "channel": {"$ref": f"#/channels/{cid}"},
                "messages": message_ref,
                "summary": f"{actor} {verb} {spec.name}",
                "tags": [{"name": actor}],
            }
    info_description = (
        "The Kafka contract of the Recall.ai transcription pipeline (ingest -> transcriber -> fetcher). "
        "Downstream services subscribe to `transcripts.ready` and `transcripts.failed` (tagged public); "
        "the `recall.*` topics carry verified Recall webhooks byte for byte. Every record of a public topic carries "
        "CloudEvents 1.0 headers in Kafka binary mode. Delivery is at least once: dedupe on ce_id. `send` operations "
        "say who writes a topic, `receive` operations who reads it (`downstream` is you). "
        "See docs/consuming-transcripts.md."
    )
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:recall-pipeline",
        "info": {
            "title": "Recall.ai transcripts over Kafka",
            "version": f"{TranscriptReady.model_fields['schema_version'].default}.0.0",
            "description": info_description,
            "tags": [
                {"name": "public", "description": "a contract downstream teams may depend on"},
                {"name": "internal", "description": "the pipeline's own plumbing: no compatibility promise"},
            ],
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:9092",
                "protocol": "kafka",
                "description": "the local broker of `make kafka-up` / `make up` (KAFKA_BOOTSTRAP_SERVERS)",
            },
            "kubernetes": {
                "host": "recall-kafka-kafka-bootstrap.kafka.svc:9092",
                "protocol": "kafka",
                "description": "the Strimzi cluster of deploy/ (in-cluster bootstrap service)",
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": component_schemas()},
    }
