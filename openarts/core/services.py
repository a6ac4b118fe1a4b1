"""What every request handler may need: settings, the database and the clock."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from openarts.config import Settings
from openarts.core.clock import Clock
from openarts.core.db import Database


@dataclass(frozen=True)
class Services:
    settings: Settings
    db: Database
    clock: Clock


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services
