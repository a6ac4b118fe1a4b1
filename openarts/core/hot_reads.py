"""Reads on the hottest paths (authenticating a caller, listing), at the driver's own speed.

Every signed request looks up its access key, and list routes run one query more. Through SQLAlchemy
each of these costs about 50 µs of statement bookkeeping plus a pool check-out, more than the database
spends on it. A :class:`HotQuery` is still written as a SQLAlchemy Core ``SELECT`` (so it stays portable
and readable), but it is compiled once per dialect and run on a raw DB-API cursor of a connection that
each thread keeps for itself in autocommit mode: one statement, one snapshot, no transaction to end.

Only for SELECTs whose columns need no type conversion: strings and integers come back as they are,
booleans as ``0``/``1`` on SQLite.
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import ClauseElement, Engine
from sqlalchemy.engine.interfaces import DBAPIConnection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler


class HotQuery:
    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._compiled: dict[str, SQLCompiler] = {}

    def _for(self, dialect: Dialect) -> SQLCompiler:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            made = self.statement.compile(dialect=dialect)
            assert isinstance(made, SQLCompiler)
            compiled = self._compiled[dialect.name] = made
        return compiled

    def bind(self, dialect: Dialect, params: dict[str, Any]) -> tuple[str, Any]:
        """The SQL text and the parameters in the driver's own style."""
        compiled = self._for(dialect)
        values = compiled.construct_params(params)
        if dialect.positional:
            assert compiled.positiontup is not None
            return compiled.string, tuple(values[name] for name in compiled.positiontup)
        return compiled.string, values


class ThreadReaders:
    """One autocommit DB-API connection per thread, for :class:`HotQuery` reads only."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._local = threading.local()
        self._all: list[Any] = []
        self._lock = threading.Lock()

    def _connection(self) -> DBAPIConnection:
        conn: DBAPIConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            proxied = self.engine.raw_connection()
            conn = proxied.dbapi_connection
            assert conn is not None
            if self.engine.dialect.name != "sqlite":  # SQLite's are autocommit already (core/db.py)
                conn.autocommit = True
            self._local.conn = conn
            self._local.proxied = proxied
            with self._lock:
                self._all.append(proxied)
        return conn

    def rows(self, query: HotQuery, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        conn = self._connection()
        sql, args = query.bind(self.engine.dialect, params)
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
            finally:
                cursor.close()
        except Exception:
            self._discard()  # a broken connection (a restarted PostgreSQL, say) is replaced next time
            raise

    def _discard(self) -> None:
        proxied = getattr(self._local, "proxied", None)
        self._local.conn = self._local.proxied = None
        if proxied is not None:
            with self._lock:
                self._all.remove(proxied)
            proxied.invalidate()

    def close(self) -> None:
        with self._lock:
            for proxied in self._all:
                proxied.close()
            self._all.clear()
