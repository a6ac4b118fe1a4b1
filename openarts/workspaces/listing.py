"""The workspace list query, built once per sort order.

Listing is the family's hottest read, and building a SELECT costs SQLAlchemy more than running it, so
every filter is a bind parameter: a filter the caller didn't give is passed as NULL (or TRUE) and drops
out. ``count(*) OVER ()`` returns the number of matches with the page in one round trip.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, Connection, Select, String, and_, asc, bindparam, desc, func, or_, select

from openarts.core.identity.service import Principal
from openarts.workspaces.access import accessible_clause, accessible_params
from openarts.workspaces.schemas import WORKSPACE_FIELDS, ListQuery
from openarts.workspaces.tables import Workspace

_TABLE = Workspace.__table__
_COLUMNS = [_TABLE.c[field] for field in WORKSPACE_FIELDS]  # rows zip straight into wire dicts
SORT_COLUMNS = {"name": Workspace.name, "update_time": Workspace.update_time, "status": Workspace.status}

_MATCHES = and_(
    Workspace.project_id == bindparam("project_id"),
    or_(bindparam("name_like", type_=String).is_(None), Workspace.name.like(bindparam("name_like"), escape="\\")),
    or_(
        bindparam("enterprise_project_id", type_=String).is_(None),
        Workspace.enterprise_project_id == bindparam("enterprise_project_id"),
    ),
    or_(bindparam("all_workspaces", type_=Boolean), accessible_clause()),
)
_COUNT = select(func.count()).select_from(_TABLE).where(_MATCHES)


def _page_query(sort_by: str, order: str) -> Select[Any]:
    direction = asc if order == "asc" else desc
    return (
        select(*_COLUMNS, func.count().over().label("total_count"))
        .where(_MATCHES)
        .order_by(direction(SORT_COLUMNS[sort_by]), direction(Workspace.id))
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_PAGES = {(sort_by, order): _page_query(sort_by, order) for sort_by in SORT_COLUMNS for order in ("asc", "desc")}


def _like_pattern(fragment: str) -> str:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_rows(conn: Connection, principal: Principal, query: ListQuery) -> tuple[int, list[Any]]:
    """(number of matches, the rows of the page: the columns of ``WORKSPACE_FIELDS``, then the count)."""
    params = {
        "project_id": principal.project_id,
        "name_like": _like_pattern(query.name) if query.name else None,
        "enterprise_project_id": query.enterprise_project_id or None,
        "all_workspaces": not query.filter_accessible,
        **accessible_params(principal),
        "limit": query.limit,
        "offset": query.offset,
    }
    rows = list(conn.execute(_PAGES[(query.sort_by, query.order)], params).all())
    if rows:
        return rows[0].total_count, rows
    total = conn.execute(_COUNT, params).scalar() or 0  # a page past the end still reports the total
    return total, []
