"""Alembic environment: OpenArts always hands it an open connection (see ``Database.migrate``)."""

from __future__ import annotations

from alembic import context

from openarts.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through openarts.core.db.Database.migrate()")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
