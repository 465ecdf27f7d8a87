"""``python -m transcriber``: run the faust worker (settings from the environment, DESIGN §5)."""

from __future__ import annotations

import sys

from pipeline_common.logging import configure_logging
from pipeline_common.settings import ConfigError, load_settings
from pipeline_common.streaming import run_worker
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
    run_worker(
        app,
        settings,
        log_level=settings.log_level,
        web_host=settings.transcriber_web_host,
        web_port=settings.transcriber_web_port,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
