"""Workspace rules: create, list, show, update, delete, and who is in a project."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openarts.core import errors, ids
from openarts.core.db import Database
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal, project_created_hooks, project_users
from openarts.core.identity.tables import Domain, Project, User
from openarts.workspaces import listing, schemas
from openarts.workspaces.access import PUBLIC, can_access, can_manage, require_workspace, workspace_not_found
from openarts.workspaces.tables import Workspace, WorkspaceGrant

DEFAULT_NAME = "default"
NORMAL = "NORMAL"

# Families that keep resources in workspaces register a counter, e.g. ("training jobs", fn); a
# workspace that still holds any cannot be deleted.
HolderCounter = Callable[[Session, str, str], int]
resource_holders: dict[str, HolderCounter] = {}


def duplicate_name(name: str) -> ApiError:
    return ApiError(400, "ModelArts.7010", f"Workspace name {name} already exists.")


def _create_default_workspace(session: Session, project: Project) -> None:
    domain = session.get_one(Domain, project.domain_id)
    session.add(
        Workspace(
            project_id=project.id,
            id=ids.DEFAULT_WORKSPACE_ID,
            name=DEFAULT_NAME,
            description="",
            owner_id=None,
            owner=domain.name,
            auth_type=PUBLIC,
            enterprise_project_id="0",
            enterprise_project_name="default",
            status=NORMAL,
            status_info="",
            create_time=project.create_time,
            update_time=project.create_time,
        )
    )


project_created_hooks.append(_create_default_workspace)


def to_wire(workspace: Workspace) -> dict[str, Any]:
    return {field: getattr(workspace, field) for field in schemas.WORKSPACE_FIELDS}


def grants_of(session: Session, workspace: Workspace) -> list[WorkspaceGrant]:
    return list(
        session.scalars(
            select(WorkspaceGrant)
            .where(WorkspaceGrant.project_id == workspace.project_id, WorkspaceGrant.workspace_id == workspace.id)
            .order_by(WorkspaceGrant.user_name)
        )
    )


def with_grants(session: Session, workspace: Workspace) -> dict[str, Any]:
    wire = to_wire(workspace)
    wire["grants"] = [
        {"user_id": g.user_id, "user_name": g.user_name, "user_type": g.user_type}
        for g in grants_of(session, workspace)
    ]
    return wire


def _resolve_grants(session: Session, principal: Principal, grants: list[schemas.Grant]) -> list[tuple[User, str]]:
    """Each grant names a user of the caller's project, by id (which wins) or by name."""
    resolved: dict[str, tuple[User, str]] = {}
    for grant in grants:
        if grant.user_id:
            user = session.get(User, grant.user_id)
        elif grant.user_name:
            user = session.scalar(
                select(User).where(User.domain_id == principal.domain_id, User.name == grant.user_name)
            )
        else:
            raise errors.invalid_argument("Invalid Argument: each grant needs user_id or user_name.")
        if user is None or user.project_id != principal.project_id:
            raise errors.invalid_argument(
                f"Invalid Argument: grant names unknown user '{grant.user_id or grant.user_name}'."
            )
        resolved[user.id] = (user, grant.user_type)
    return list(resolved.values())


def _replace_grants(session: Session, workspace: Workspace, grantees: list[tuple[User, str]]) -> None:
    for old in grants_of(session, workspace):
        session.delete(old)
    session.flush()
    for user, user_type in grantees:
        session.add(
            WorkspaceGrant(
                project_id=workspace.project_id,
                workspace_id=workspace.id,
                user_id=user.id,
                user_name=user.name,
                user_type=user_type,
            )
        )


def _check_name(session: Session, project_id: str, name: str, except_id: str | None = None) -> None:
    if name.casefold() == DEFAULT_NAME:
        raise errors.invalid_argument("Invalid Argument: the workspace name 'default' is reserved.")
    clash = session.scalar(select(Workspace.id).where(Workspace.project_id == project_id, Workspace.name == name))
    if clash is not None and clash != except_id:
        raise duplicate_name(name)


def create(
    session: Session, principal: Principal, body: schemas.CreateWorkspace, now_ms: int, max_workspaces: int
) -> dict[str, Any]:
    _check_name(session, principal.project_id, body.name)
    count = session.scalar(select(func.count()).where(Workspace.project_id == principal.project_id)) or 0
    if count - 1 >= max_workspaces:  # the default workspace does not count
        raise ApiError(400, "ModelArts.7006", f"Workspace number over limit: at most {max_workspaces}.")
    grantees = _resolve_grants(session, principal, body.grants)
    workspace = Workspace(
        project_id=principal.project_id,
        id=ids.hex32(),
        name=body.name,
        description=body.description,
        owner_id=principal.user_id,
        owner=principal.user_name,
        auth_type=body.auth_type,
        enterprise_project_id=body.enterprise_project_id,
        enterprise_project_name="default" if body.enterprise_project_id == "0" else body.enterprise_project_id,
        status=NORMAL,
        status_info="",
        create_time=now_ms,
        update_time=now_ms,
    )
    session.add(workspace)
    try:
        session.flush()
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise duplicate_name(body.name) from None
    _replace_grants(session, workspace, grantees)
    session.flush()
    return with_grants(session, workspace)


def list_workspaces(db: Database, principal: Principal, query: schemas.ListQuery) -> dict[str, Any]:
    total, rows = listing.list_rows(db, principal, query)
    workspaces = [dict(zip(schemas.WORKSPACE_FIELDS, row, strict=True)) for row in rows]
    return {"total_count": total, "count": len(rows), "workspaces": workspaces}


def show(session: Session, principal: Principal, workspace_id: str) -> dict[str, Any]:
    workspace = require_workspace(session, principal, workspace_id, action="modelarts:workspace:get")
    return with_grants(session, workspace)


def update(
    session: Session, principal: Principal, workspace_id: str, body: schemas.UpdateWorkspace, now_ms: int
) -> dict[str, Any]:
    workspace = require_workspace(session, principal, workspace_id, action="modelarts:workspace:update", manage=True)
    if workspace.id == ids.DEFAULT_WORKSPACE_ID and (
        (body.name is not None and body.name != workspace.name)
        or (body.auth_type is not None and body.auth_type != PUBLIC)
        or body.grants
    ):
        raise errors.invalid_argument(
            "Invalid Argument: the default workspace keeps its name and stays PUBLIC; only its description can change."
        )
    if body.name is not None and body.name != workspace.name:
        _check_name(session, principal.project_id, body.name, except_id=workspace.id)
        workspace.name = body.name
    if body.description is not None:
        workspace.description = body.description
    if body.auth_type is not None:
        workspace.auth_type = body.auth_type
    if body.grants is not None:
        _replace_grants(session, workspace, _resolve_grants(session, principal, body.grants))
    workspace.update_time = now_ms
    try:
        session.flush()
    except IntegrityError:
        raise duplicate_name(body.name or "") from None
    return {"workspace_id": workspace.id}


def delete(session: Session, principal: Principal, workspace_id: str) -> dict[str, Any]:
    workspace = require_workspace(session, principal, workspace_id, action="modelarts:workspace:delete", manage=True)
    if workspace.id == ids.DEFAULT_WORKSPACE_ID:
        raise ApiError(400, "ModelArts.7004", "The default workspace cannot be deleted.")
    held = [
        f"{count} {kind}"
        for kind, counter in resource_holders.items()
        if (count := counter(session, workspace.project_id, workspace.id)) > 0
    ]
    if held:
        raise ApiError(
            400,
            "ModelArts.7004",
            f"Workspace {workspace_id} still holds resources ({', '.join(held)}); delete them first.",
        )
    session.delete(workspace)
    session.flush()
    return {"workspace_id": workspace_id}


# --- authorisation questions -------------------------------------------------------------------

MANAGE_ACTIONS = {
    "modelarts:workspace:*",
    "modelarts:workspace:update",
    "modelarts:workspace:delete",
    "modelarts:workspace:updateQuotas",
}


def validate_authorization(
    session: Session, principal: Principal, workspace_id: str, requests: list[schemas.AuthRequest]
) -> dict[str, Any]:
    """Answer, for each requested action, whether the caller may take it in the workspace.

    Asking is open to every user of the project, whatever the answer; only the answer follows the rules.
    """
    workspace = session.scalar(
        select(Workspace).where(Workspace.project_id == principal.project_id, Workspace.id == workspace_id)
    )
    if workspace is None:
        raise workspace_not_found(workspace_id)
    results = []
    for request in requests:
        manage = request.action in MANAGE_ACTIONS
        allowed = can_manage(principal, workspace) if manage else can_access(session, principal, workspace)
        cause = []
        if not allowed:
            cause = [
                {
                    "policy_name": "workspace_auth_type",
                    "condition": [
                        {
                            "key": "auth_type",
                            "operator": "StringEquals",
                            "value": [workspace.auth_type],
                        }
                    ],
                }
            ]
        results.append(
            {
                "action_id": request.action_id,
                "action": request.action,
                "resource": request.resource,
                "verdict": "allow" if allowed else "deny",
                "cause": cause,
            }
        )
    return {"results": results}


def list_project_users(session: Session, principal: Principal) -> dict[str, Any]:
    return {"users": [{"userName": user.name} for user in project_users(session, principal.project_id)]}
