"""HTTP routes of the workspace family: ``/v1/{project_id}/workspaces...``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query

from openarts.core.auth import CurrentPrincipal, authenticate
from openarts.core.clock import to_ms
from openarts.core.http import route_class
from openarts.core.services import Services, get_services
from openarts.workspaces import quotas, schemas, service
from openarts.workspaces.access import require_workspace

router = APIRouter(
    prefix="/v1/{project_id}/workspaces",
    route_class=route_class("ModelArts.0101"),
    dependencies=[Depends(authenticate)],
    tags=["workspaces"],
)
ServicesDep = Annotated[Services, Depends(get_services)]


@router.get("")
def list_workspace(
    principal: CurrentPrincipal,
    services: ServicesDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    sort_by: Literal["name", "update_time", "status"] = "name",
    order: Literal["asc", "desc"] = "desc",
    name: Annotated[str | None, Query(max_length=64)] = None,
    enterprise_project_id: Annotated[str | None, Query(max_length=64)] = None,
    filter_accessible: bool = False,
) -> dict[str, Any]:
    with services.db.read() as session:
        return service.list_workspaces(
            session,
            principal,
            offset=offset,
            limit=limit,
            sort_by=sort_by,
            order=order,
            name=name,
            enterprise_project_id=enterprise_project_id,
            filter_accessible=filter_accessible,
        )


@router.post("")
def create_workspace(
    body: schemas.CreateWorkspace, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    with services.db.write() as session:
        return service.create(
            session, principal, body, to_ms(services.clock.now()), services.settings.max_workspaces_per_project
        )


@router.get("/users/list")
def list_users(principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    with services.db.read() as session:
        return service.list_project_users(session, principal)


@router.get("/{workspace_id}")
def show_workspace(workspace_id: str, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    with services.db.read() as session:
        return service.show(session, principal, workspace_id)


@router.put("/{workspace_id}")
def update_workspace(
    workspace_id: str, body: schemas.UpdateWorkspace, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    with services.db.write() as session:
        return service.update(session, principal, workspace_id, body, to_ms(services.clock.now()))


@router.delete("/{workspace_id}")
def delete_workspace(workspace_id: str, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    with services.db.write() as session:
        return service.delete(session, principal, workspace_id)


@router.post("/{workspace_id}/auth")
def validate_authorization(
    workspace_id: str, body: schemas.ValidateAuthorization, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    with services.db.read() as session:
        return service.validate_authorization(session, principal, workspace_id, body.requests)


@router.get("/{workspace_id}/quotas")
def show_workspace_quotas(workspace_id: str, principal: CurrentPrincipal, services: ServicesDep) -> dict[str, Any]:
    with services.db.read() as session:
        workspace = require_workspace(session, principal, workspace_id, action="modelarts:workspace:getQuotas")
        return {"quotas": quotas.list_quotas(session, workspace)}


@router.put("/{workspace_id}/quotas")
def update_workspace_quotas(
    workspace_id: str, body: schemas.UpdateQuotas, principal: CurrentPrincipal, services: ServicesDep
) -> dict[str, Any]:
    with services.db.write() as session:
        workspace = require_workspace(
            session, principal, workspace_id, action="modelarts:workspace:updateQuotas", manage=True
        )
        changes = [(q.resource, q.quota) for q in body.quotas]
        return {"quotas": quotas.update_quotas(session, workspace, changes, to_ms(services.clock.now()))}
