"""The migrations build exactly the schema the tables declare: a table or column added without its
migration (or the other way round) fails here, not on a user's upgrade."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from openarts.core.db import Database
from openarts.tables import metadata


def test_migrations_match_the_tables(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'schema.db'}")
    db.migrate()
    try:
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
    finally:
        db.dispose()
    assert differences == []
