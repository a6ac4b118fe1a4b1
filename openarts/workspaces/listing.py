"""The workspace list query, built once per sort order.

Listing is the family's hottest read, so it runs as a hot read (``core/hot_reads.py``): every filter is
a bind parameter, and a filter the caller didn't give is passed as NULL (or TRUE) and drops out. The
matches are counted only when the page doesn't show where they end.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, String, and_, asc, bindparam, desc, func, or_, select

from openarts.core.db import Database
from openarts.core.hot_reads import HotQuery
from openarts.core.identity.service import Principal
from openarts.core.sql import LIKE_ESCAPE, contains_pattern
from openarts.workspaces.access import accessible_clause, accessible_params
from openarts.workspaces.schemas import WORKSPACE_FIELDS, ListQuery
from openarts.workspaces.tables import Workspace

_TABLE = Workspace.__table__
_COLUMNS = [_TABLE.c[field] for field in WORKSPACE_FIELDS]  # rows zip straight into wire dicts
SORT_COLUMNS = {"name": Workspace.name, "update_time": Workspace.update_time, "status": Workspace.status}

_MATCHES = and_(
    Workspace.project_id == bindparam("project_id"),
    or_(
        bindparam("name_like", type_=String).is_(None),
        Workspace.name.ilike(bindparam("name_like"), escape=LIKE_ESCAPE),
    ),
    or_(
        bindparam("enterprise_project_id", type_=String).is_(None),
        Workspace.enterprise_project_id == bindparam("enterprise_project_id"),
    ),
    or_(bindparam("all_workspaces", type_=Boolean), accessible_clause()),
)
_COUNT = HotQuery(select(func.count()).select_from(_TABLE).where(_MATCHES))


def _page_query(sort_by: str, order: str) -> HotQuery:
    direction = asc if order == "asc" else desc
    # Names are unique in a project, so sorting by name needs no tie-breaker and walks the index.
    tie_breaker = [] if sort_by == "name" else [direction(Workspace.id)]
    return HotQuery(
        select(*_COLUMNS)
        .where(_MATCHES)
        .order_by(direction(SORT_COLUMNS[sort_by]), *tie_breaker)
        .limit(bindparam("limit"))
        .offset(bindparam("offset"))
    )


_PAGES = {(sort_by, order): _page_query(sort_by, order) for sort_by in SORT_COLUMNS for order in ("asc", "desc")}


def list_rows(db: Database, principal: Principal, query: ListQuery) -> tuple[int, list[tuple[Any, ...]]]:
    """(number of matches, the rows of the page: the columns of ``WORKSPACE_FIELDS``)."""
    params = {
        "project_id": principal.project_id,
        "name_like": contains_pattern(query.name) if query.name else None,
        "enterprise_project_id": query.enterprise_project_id or None,
        "all_workspaces": not query.filter_accessible,
        **accessible_params(principal),
        "limit": query.limit,
        "offset": query.offset,
    }
    rows = db.hot_rows(_PAGES[(query.sort_by, query.order)], params)
    if 0 < len(rows) < query.limit or (not rows and query.offset == 0):
        return query.offset + len(rows), rows  # the page holds the last match: no need to count
    total: int = db.hot_rows(_COUNT, params)[0][0]
    return total, rows
