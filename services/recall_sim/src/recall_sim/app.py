"""The simulator's HTTP surface: Recall's API subset, pre-signed downloads, and an admin API for tests.

``create_app(settings)`` builds the ASGI app from three routers (``routes.api``, ``routes.files``, ``routes.admin``);
fault injection is one dependency (``http.faults``). Run it under uvicorn (``python -m recall_sim`` does).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from recall_sim.http import Answered, SimulatorApp, answered
from recall_sim.routes import admin, api, files, listing
from recall_sim.settings import SimSettings
from recall_sim.simulator import Simulator

__all__ = ["SimulatorApp", "create_app"]


def create_app(settings: SimSettings | None = None) -> SimulatorApp:
    settings = settings or SimSettings()
    sim = Simulator(
        config=settings.runtime_config(),
        faults=settings.recall_sim_faults.model_copy(deep=True),
        api_key=settings.recall_sim_api_key.get_secret_value(),
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await sim.start()
        try:
            yield
        finally:
            await sim.stop()

    app = SimulatorApp(title="Recall.ai simulator", version="0.1.0", lifespan=lifespan, docs_url="/admin/docs")
    app.state.sim = sim
    app.add_exception_handler(Answered, answered)
    for router in (api.router, listing.router, files.router, admin.router):
        app.include_router(router)
    return app
