"""Builds the FastAPI application: plumbing first, then each family's router."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from openarts import __version__
from openarts.config import Settings
from openarts.core.clock import Clock, SystemClock
from openarts.core.db import Database
from openarts.core.http import RequestContextMiddleware, install_error_handlers
from openarts.core.leadership import Leadership
from openarts.core.services import Services
from openarts.families import CONTROLLERS, EVERY_SERVER, ROUTERS, UNCAPPED_BODY_PREFIXES


def create_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None) -> FastAPI:
    """The app over an already migrated database (see ``openarts.bootstrap.prepare``)."""
    services = Services(settings=settings, db=db or Database(settings.database_url), clock=clock or SystemClock())

    @asynccontextmanager
    async def run_controllers(_app: FastAPI) -> AsyncIterator[None]:
        """Each family's controller runs while the server serves and holds its lease (re-adopting its work
        on start); several servers on one database share them out (see core/leadership.py)."""
        local = [make(services) for make in EVERY_SERVER]
        for task in local:
            task.start()
        leadership = Leadership(services, CONTROLLERS)
        leadership.start()
        try:
            async with AsyncExitStack() as routers:  # what routers hold (client pools) closes with the app
                for router in ROUTERS:
                    await routers.enter_async_context(router.lifespan_context(_app))
                yield
        finally:
            leadership.stop()
            for task in reversed(local):
                task.stop()

    app = FastAPI(
        title="OpenArts",
        version=__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=run_controllers,
    )
    app.state.services = services
    install_error_handlers(app)
    app.add_middleware(
        RequestContextMiddleware, max_body_bytes=settings.max_body_bytes, uncapped_prefixes=UNCAPPED_BODY_PREFIXES
    )

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    # The routers' routes go straight into the app's table (each already carries its router's prefix and
    # dependencies): this FastAPI matches included routers one by one through a layer of its own, which
    # cost more than a signed, database-backed list itself.
    for router in ROUTERS:
        app.router.routes.extend(router.routes)
    return app
