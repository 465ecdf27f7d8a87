"""``python -m fetcher``: run the faust worker (settings from the environment, DESIGN §5)."""

from __future__ import annotations

import sys

from fetcher.app import create_app
from fetcher.settings import FetcherSettings
from pipeline_common.logging import configure_logging
from pipeline_common.settings import ConfigError, load_settings
from pipeline_common.streaming import run_worker


def main() -> int:
    try:
        settings = load_settings(FetcherSettings)
        if settings.recall_api_key is None:
            raise ConfigError(["RECALL_API_KEY: Field required (the fetcher calls Recall's API)"])
        configure_logging(settings, service="fetcher")
        app = create_app(settings)
    except (ConfigError, ValueError) as error:
        print(f"fetcher: {error}", file=sys.stderr)
        return 2
    run_worker(
        app,
        settings,
        log_level=settings.log_level,
        web_host=settings.fetcher_web_host,
        web_port=settings.fetcher_web_port,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
