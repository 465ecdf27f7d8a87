"""``python -m recall_sim``: run the simulator under uvicorn (settings from RECALL_SIM_* variables)."""

from __future__ import annotations

import sys

import uvicorn

from pipeline_common.logging import configure_logging, get_logger
from pipeline_common.settings import ConfigError, load_settings
from recall_sim.app import create_app
from recall_sim.settings import SimSettings


def main() -> int:
    try:
        settings = load_settings(SimSettings)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    configure_logging(settings, service="recall_sim")
    get_logger("recall_sim").info(
        "starting recall simulator",
        host=settings.recall_sim_host,
        port=settings.recall_sim_port,
        webhook_url=settings.webhook_url,
    )
    uvicorn.run(
        create_app(settings),
        host=settings.recall_sim_host,
        port=settings.recall_sim_port,
        log_config=None,
        access_log=False,
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
