"""Small SQL helpers every family's queries share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement

LIKE_ESCAPE = "\\"


def contains_pattern(fragment: str) -> str:
    """A LIKE pattern matching ``fragment`` literally anywhere: ``%`` and ``_`` in it are not wildcards."""
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def contains(column: Any, fragment: str) -> ColumnElement[bool]:
    """``column`` holds ``fragment``, ignoring case: the same answer on SQLite and PostgreSQL (their plain
    LIKE differ there)."""
    condition: ColumnElement[bool] = column.ilike(contains_pattern(fragment), escape=LIKE_ESCAPE)
    return condition
