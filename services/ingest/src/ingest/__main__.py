"""``python -m ingest``: serve the webhook endpoint under uvicorn (uvloop, httptools)."""

from __future__ import annotations

import asyncio
import sys

import uvicorn

from ingest.app import create_app
from ingest.settings import IngestSettings
from pipeline_common.kafka_preflight import KafkaConnectionRefused, check_kafka_connection
from pipeline_common.logging import configure_logging, get_logger
from pipeline_common.settings import ConfigError, load_settings
from pipeline_common.webhooks import WebhookSecretError


def main() -> int:
    try:
        settings = load_settings(IngestSettings)
        configure_logging(settings, service="ingest")
        app = create_app(settings)
        asyncio.run(check_kafka_connection(settings))  # a refused connection never heals: exit now, say why
    except (ConfigError, WebhookSecretError, KafkaConnectionRefused) as error:
        print(f"ingest: {error}", file=sys.stderr)
        return 2
    get_logger("ingest").info("starting", port=settings.ingest_port, host=settings.ingest_host)
    uvicorn.run(
        app,
        host=settings.ingest_host,
        port=settings.ingest_port,
        loop="uvloop",
        http="httptools",
        log_config=None,  # keep our JSON logging
        access_log=False,
        timeout_graceful_shutdown=int(settings.ingest_shutdown_timeout_seconds),
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
