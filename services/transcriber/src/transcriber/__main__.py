"""``python -m transcriber``: run the faust worker (settings from the environment: docs/architecture.md,
"Configuration")."""

from __future__ import annotations

import sys

from pipeline_common.streaming import worker_main
from transcriber.app import create_app
from transcriber.settings import TranscriberSettings


def main() -> int:
    return worker_main("transcriber", TranscriberSettings, create_app)


if __name__ == "__main__":
    sys.exit(main())
