"""The database: engine, sessions and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout. Write transactions start with
``BEGIN IMMEDIATE`` so they take the write lock up front: two writers queue on the busy timeout
instead of one failing half-way with "database is locked" when it upgrades a read lock. PostgreSQL
(psycopg 3) is used as it comes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import BigInteger, Engine, NullPool, create_engine, event, text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import DeclarativeBase, Session

from openarts.core.hot_reads import HotQuery, ThreadReaders

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_S = 30.0


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {int: BigInteger}


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use psycopg 3 for them."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _configure_sqlite(engine: Engine, synchronous: str = "FULL") -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event below issue BEGIN itself; pysqlite's own implicit
        # transactions would otherwise start a deferred one first.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        # FULL: an acknowledged commit survives power loss (security-reliability.md, faults). NORMAL (WAL):
        # survives any crash of the process, and power loss but for the last commits.
        cur.execute(f"PRAGMA synchronous={synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        options: dict[str, Any] = (
            {"connect_args": {"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_S}}
            if self.is_sqlite
            else {"pool_pre_ping": True}
        )
        self.engine = create_engine(self.url, pool_size=16, max_overflow=16, **options)
        # Hot reads keep one connection per thread of their own, outside the pool (core/hot_reads.py).
        self._hot = ThreadReaders(create_engine(self.url, poolclass=NullPool, **options))
        self._write_engine = self.engine
        self._bookkeeping_engine = self.engine
        if self.is_sqlite:
            _configure_sqlite(self.engine)
            _configure_sqlite(self._hot.engine)
            self._write_engine = self.engine.execution_options(sqlite_begin="IMMEDIATE")
            bookkeeping = create_engine(self.url, pool_size=4, max_overflow=4, **options)
            _configure_sqlite(bookkeeping, synchronous="NORMAL")
            self._bookkeeping_engine = bookkeeping.execution_options(sqlite_begin="IMMEDIATE")

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads; it never commits."""
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def hot_rows(self, query: HotQuery, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """Run a one-statement read of a hot path (see ``core/hot_reads.py``)."""
        return self._hot.rows(query, params)

    @contextmanager
    def write(self, *, durable: bool = True) -> Iterator[Session]:
        """A session that holds the write lock from its first statement and commits on success.

        Requests a client is told succeeded are ``durable``: on disk before the answer. Controllers'
        bookkeeping (a trial started, a phase changed) may pass ``durable=False``: it survives any crash of
        the server, and after a power cut the controller re-derives what the last commits said from the
        processes and their exit files. On SQLite that saves an fsync per commit.
        """
        engine = self._write_engine if durable else self._bookkeeping_engine
        with Session(engine, expire_on_commit=False) as session, session.begin():
            yield session

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        """Like ``write``, but a Core connection: for hot paths that write a few known rows with prepared
        statements, where an ORM session's bookkeeping would cost more than the writes themselves."""
        engine = self._write_engine if durable else self._bookkeeping_engine
        with engine.begin() as connection:
            yield connection

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (safe to call from several processes)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        with self._write_engine.begin() as conn:
            if not self.is_sqlite:
                # Serialise concurrent migrators (the server and the CLI may start together).
                conn.execute(text("SELECT pg_advisory_xact_lock(7340561)"))
            config.attributes["connection"] = conn
            command.upgrade(config, "heads")  # every branch, should two families add one at once

    def dispose(self) -> None:
        self._hot.close()
        self.engine.dispose()
        if self._bookkeeping_engine is not self.engine:
            self._bookkeeping_engine.dispose()
