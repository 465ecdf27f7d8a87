"""``python -m transcriber``: run the faust worker (settings from the environment, DESIGN §5)."""

from __future__ import annotations

import asyncio
import sys

from pipeline_common.kafka import ensure_topics_when_reachable
from pipeline_common.logging import configure_logging
from pipeline_common.settings import ConfigError, load_settings
from transcriber.app import create_app
from transcriber.settings import TranscriberSettings


def main() -> int:
    try:
        settings = load_settings(TranscriberSettings)
        if settings.recall_api_key is None:
            raise ConfigError(["RECALL_API_KEY: Field required (the transcriber calls Recall's API)"])
        configure_logging(settings, service="transcriber")
        app = create_app(settings)
    except ConfigError as error:
        print(f"transcriber: {error}", file=sys.stderr)
        return 2
    if settings.kafka_create_topics:
        asyncio.run(ensure_topics_when_reachable(settings))
    sys.argv = [
        sys.argv[0],
        "worker",
        "--loglevel",
        settings.log_level.lower(),
        "--web-host",
        settings.transcriber_web_host,
        "--web-port",
        str(settings.transcriber_web_port),
    ]
    app.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
