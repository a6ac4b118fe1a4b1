"""Getting a data directory ready: folders, schema, and on the very first start the admin user."""

from __future__ import annotations

import json
import os
from typing import Any

import openarts.families  # noqa: F401 - importing the families registers their hooks
from openarts.config import Settings
from openarts.core.clock import Clock, SystemClock
from openarts.core.db import Database
from openarts.core.identity.service import bootstrap_admin


def prepare(settings: Settings) -> Database:
    """Create the data directory (0700) and bring the schema up to date."""
    settings.ensure_data_dir()
    db = Database(settings.database_url)
    db.migrate()
    return db


def _write_secret_file(path: os.PathLike[str], payload: dict[str, Any]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")
    os.chmod(path, 0o600)


def ensure_admin(settings: Settings, db: Database, clock: Clock | None = None) -> dict[str, Any] | None:
    """Create the admin on the first start and store its credentials (0600); None if it exists.

    The file is written before the transaction commits, so an admin never exists without it.
    """
    with db.write() as session:
        created = bootstrap_admin(session, clock or SystemClock(), settings.region)
        if created is not None:
            try:
                _write_secret_file(settings.admin_credentials_file, created)
            except OSError:
                settings.admin_credentials_file.unlink(missing_ok=True)
                raise
    return created
