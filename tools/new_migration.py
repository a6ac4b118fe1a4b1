"""Write a new Alembic revision by comparing the tables with the newest migration.

Usage: python tools/new_migration.py "what changed" 0002
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config

from openarts.core.db import MIGRATIONS_DIR, Database


def main() -> None:
    message, rev_id = sys.argv[1], sys.argv[2]
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{Path(tmp) / 'autogen.db'}")
        db.migrate()
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with db.engine.begin() as conn:
            config.attributes["connection"] = conn
            command.revision(config, message=message, autogenerate=True, rev_id=rev_id)


if __name__ == "__main__":
    main()
