"""JSON Schemas of the event models, open for consumers (unknown properties ignored)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from devkit.docs.model import COMPONENT_REF, EVENT_MODELS, JSON_SCHEMA_DIALECT, OPEN_FOR_CONSUMERS
from pipeline_common.contracts import TranscriptReady
from pipeline_common.recall.events import WebhookEvent
from pipeline_common.topics import (
    TRANSCRIPTS_FAILED,
    TRANSCRIPTS_READY,
)


def _open_for_consumers(schema: Any) -> Any:
    """Drop ``additionalProperties: false``: the producer never emits unknown fields (``extra="forbid"``), but a
    consumer validating with this schema must keep working when a later release adds one."""
    if isinstance(schema, dict):
        return {
            key: _open_for_consumers(value)
            for key, value in schema.items()
            if not (key == "additionalProperties" and value is False)
        }
    if isinstance(schema, list):
        return [_open_for_consumers(item) for item in schema]
    return schema


def _describe(model: type[BaseModel], schema: dict[str, Any]) -> dict[str, Any]:
    described = dict(schema)
    if model is WebhookEvent:
        described["description"] = (
            "A Recall webhook body, byte for byte as Recall sent it. Besides this shape: recording.* and "
            "transcript.* events carry data.data (with updated_at) and data.recording; transcript.* events also "
            "data.transcript; bot.* events data.bot. Fields Recall adds later are kept."
        )
    else:
        spec = TRANSCRIPTS_READY if model is TranscriptReady else TRANSCRIPTS_FAILED
        described["description"] = f"{spec.description} Topic {spec.name}, key: {spec.key}. {OPEN_FOR_CONSUMERS}"
    return described


def component_schemas() -> dict[str, Any]:
    """Every schema the AsyncAPI document references, with refs into ``#/components/schemas``."""
    _, definitions = models_json_schema(
        [(model, "serialization") for model in EVENT_MODELS], ref_template=COMPONENT_REF
    )
    schemas: dict[str, Any] = _open_for_consumers(definitions["$defs"])
    for model in EVENT_MODELS:
        schemas[model.__name__] = _describe(model, schemas[model.__name__])
    return schemas


def json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The standalone JSON Schema (draft 2020-12) of one event."""
    schema = _describe(model, _open_for_consumers(model.model_json_schema(mode="serialization")))
    return {"$schema": JSON_SCHEMA_DIALECT, **schema}
