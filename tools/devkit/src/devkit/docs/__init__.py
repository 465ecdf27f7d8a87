"""The public Kafka contract as documents: an AsyncAPI 3.0 description of every topic and a JSON Schema per event.

Generated from the topic registry (:mod:`pipeline_common.topics`), the event models (:mod:`pipeline_common.contracts`,
and :class:`~pipeline_common.recall.events.WebhookEvent` for the ``recall.*`` topics), the CloudEvents header names
(:mod:`pipeline_common.cloudevents`) and the dead-letter headers (:mod:`pipeline_common.dlq`), so the documents cannot
say something the code does not do. ``make docs`` runs it; a unit test fails when the checked-in files are stale.

    python -m devkit.docs            # write docs/asyncapi.yaml and docs/schemas/*.json
    python -m devkit.docs --check    # exit 1 and name the stale files when they differ

Output is deterministic: keys sorted, topics in registry order, no timestamps. Part of the development harness, not
of the runtime library: the services never import it, and PyYAML (to write the YAML) is a development dependency.

The package: ``model`` (paths, :class:`MessageDoc`), ``examples``, ``messages`` (one per topic), ``headers``,
``schemas``, ``asyncapi`` (the document), ``files`` (render, check, write; the command line).
"""

from __future__ import annotations

from devkit import ROOT
from devkit.docs.asyncapi import asyncapi_document, channel_id
from devkit.docs.examples import example_failed, example_ready, example_webhook
from devkit.docs.files import main, render_files, stale_files, write_files
from devkit.docs.headers import cloudevents_header_names, dlq_header_names
from devkit.docs.messages import message_for
from devkit.docs.model import ASYNCAPI_FILE, DOCS_DIR, EVENT_MODELS, HEADER, SCHEMAS_DIR, MessageDoc
from devkit.docs.schemas import component_schemas, json_schema

__all__ = [
    "ASYNCAPI_FILE",
    "DOCS_DIR",
    "EVENT_MODELS",
    "HEADER",
    "ROOT",
    "SCHEMAS_DIR",
    "MessageDoc",
    "asyncapi_document",
    "channel_id",
    "cloudevents_header_names",
    "component_schemas",
    "dlq_header_names",
    "example_failed",
    "example_ready",
    "example_webhook",
    "json_schema",
    "main",
    "message_for",
    "render_files",
    "stale_files",
    "write_files",
]
