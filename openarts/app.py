"""Builds the FastAPI application: plumbing first, then each family's router."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from openarts import __version__
from openarts.config import Settings
from openarts.core.clock import Clock, SystemClock
from openarts.core.db import Database
from openarts.core.http import RequestContextMiddleware, install_error_handlers
from openarts.core.services import Services
from openarts.families import ROUTERS


def create_app(settings: Settings, *, db: Database | None = None, clock: Clock | None = None) -> FastAPI:
    """The app over an already migrated database (see ``openarts.bootstrap.prepare``)."""
    app = FastAPI(title="OpenArts", version=__version__, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = Services(
        settings=settings, db=db or Database(settings.database_url), clock=clock or SystemClock()
    )
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)

    @app.get("/health", include_in_schema=False)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "version": __version__})

    for router in ROUTERS:
        app.include_router(router)
    return app
