"""``python -m fetcher``: run the faust worker (settings from the environment: docs/architecture.md,
"Configuration")."""

from __future__ import annotations

import sys

from fetcher.app import create_app
from fetcher.settings import FetcherSettings
from pipeline_common.streaming import worker_main


def main() -> int:
    return worker_main("fetcher", FetcherSettings, create_app)


if __name__ == "__main__":
    sys.exit(main())
