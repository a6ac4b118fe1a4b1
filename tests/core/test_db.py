"""Concurrent writers on the real database: no "database is locked", no lost update."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from sqlalchemy import select, text

from openarts.core.db import Database
from openarts.core.identity.service import default_project
from openarts.workspaces.tables import Workspace
from tests.conftest import InProcess


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'x.db'}")
    with db.read() as session:
        assert session.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert session.execute(text("PRAGMA busy_timeout")).scalar() == 30000
    db.dispose()


def test_concurrent_read_modify_write_loses_nothing(inprocess: InProcess) -> None:
    db = inprocess.db
    with db.read() as session:
        project = default_project(session)
        assert project is not None
        project_id = project.id

    def bump(_: int) -> None:
        for _ in range(25):
            with db.write() as session:
                row = session.scalar(
                    select(Workspace).where(Workspace.project_id == project_id, Workspace.id == "0").with_for_update()
                )
                assert row is not None
                row.description = str(int(row.description or "0") + 1)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(bump, range(8)))  # re-raises any "database is locked"

    with db.read() as session:
        row = session.scalar(select(Workspace).where(Workspace.project_id == project_id, Workspace.id == "0"))
        assert row is not None
        assert row.description == str(8 * 25)


def test_a_failed_write_leaves_nothing_behind(inprocess: InProcess) -> None:
    db = inprocess.db
    try:
        with db.write() as session:
            session.execute(text("UPDATE workspaces SET description = 'half' WHERE id = '0'"))
            raise RuntimeError("crash in the middle")
    except RuntimeError:
        pass
    with db.read() as session:
        assert session.scalar(text("SELECT description FROM workspaces WHERE id = '0'")) == ""
