"""Who may use a workspace. Every family calls :func:`require_workspace` before it reads or writes
anything that lives in one.

- PUBLIC: every user of the project.
- PRIVATE: the creator and the main account.
- INTERNAL: the creator, the main account and the users in ``grants``.

Changing the workspace itself (update, delete, quotas) is for its creator and the main account only;
the default workspace "0" has no creator, so only the main account manages it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, bindparam, exists, or_, select
from sqlalchemy.orm import Session

from openarts.core import errors
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.workspaces.tables import Workspace, WorkspaceGrant

PUBLIC, PRIVATE, INTERNAL = "PUBLIC", "PRIVATE", "INTERNAL"
AUTH_TYPES = (PUBLIC, PRIVATE, INTERNAL)


def workspace_not_found(workspace_id: str) -> ApiError:
    return ApiError(400, "ModelArts.7005", f"Workspace {workspace_id} does not exist.")


def accessible_clause() -> ColumnElement[bool]:
    """A SQL condition on :class:`Workspace` rows: those the caller may use.

    It takes its caller as bind parameters (see :func:`accessible_params`), so statements that use it
    can be built once and reused.
    """
    granted = exists().where(
        WorkspaceGrant.project_id == Workspace.project_id,
        WorkspaceGrant.workspace_id == Workspace.id,
        WorkspaceGrant.user_id == bindparam("caller_id"),
    )
    return or_(
        bindparam("caller_sees_all", type_=Boolean),
        Workspace.auth_type == PUBLIC,
        Workspace.owner_id == bindparam("caller_id"),
        and_(Workspace.auth_type == INTERNAL, granted),
    )


def accessible_params(principal: Principal) -> dict[str, Any]:
    return {"caller_id": principal.user_id, "caller_sees_all": principal.is_admin}


def can_manage(principal: Principal, workspace: Workspace) -> bool:
    return principal.is_admin or (workspace.owner_id is not None and workspace.owner_id == principal.user_id)


def can_access(session: Session, principal: Principal, workspace: Workspace) -> bool:
    if workspace.project_id != principal.project_id:
        return False
    if workspace.auth_type == PUBLIC or can_manage(principal, workspace):
        return True
    if workspace.auth_type == INTERNAL:
        grant = session.get(WorkspaceGrant, (workspace.project_id, workspace.id, principal.user_id))
        return grant is not None
    return False


def require_workspace(
    session: Session,
    principal: Principal,
    workspace_id: str,
    *,
    action: str,
    manage: bool = False,
    lock: bool = False,
) -> Workspace:
    """The workspace, if the principal may ``action`` in it; a 400 if it doesn't exist, else a 403.

    ``lock`` takes a row lock (PostgreSQL) so a quota check and the create that follows it are atomic;
    SQLite write transactions already hold the database lock.
    """
    query = select(Workspace).where(Workspace.project_id == principal.project_id, Workspace.id == workspace_id)
    if lock:
        query = query.with_for_update()
    workspace = session.scalar(query)
    if workspace is None:
        raise workspace_not_found(workspace_id)
    allowed = can_manage(principal, workspace) if manage else can_access(session, principal, workspace)
    if not allowed:
        raise errors.forbidden(f"{action} on workspace {workspace_id}")
    return workspace
