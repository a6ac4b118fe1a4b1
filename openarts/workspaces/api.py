"""HTTP routes of the workspace family: ``/v1/{project_id}/workspaces...``.

Reads run on the event loop (one lock-free indexed query each, see ``core/auth.py``); writes run in
the thread pool, since they may wait for the database's write lock.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.workspaces import quotas, schemas, service
from openarts.workspaces.access import require_workspace

router = APIRouter(
    prefix="/v1/{project_id}/workspaces",
    route_class=route_class("ModelArts.0101"),
    dependencies=[Depends(authenticate)],
    tags=["workspaces"],
)


@router.get("")
async def list_workspace(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListQuery)
    return ok(service.list_workspaces(services_of(request).db, principal_of(request), query))


@router.post("")
def create_workspace(request: Request, body: schemas.CreateWorkspace) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        limit = services.settings.max_workspaces_per_project
        return ok(service.create(session, principal_of(request), body, now_ms, limit))


@router.get("/users/list")
async def list_users(request: Request) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.list_project_users(session, principal_of(request)))


@router.get("/{workspace_id}")
async def show_workspace(request: Request, workspace_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show(session, principal_of(request), workspace_id))


@router.put("/{workspace_id}")
def update_workspace(request: Request, workspace_id: str, body: schemas.UpdateWorkspace) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.update(session, principal_of(request), workspace_id, body, now_ms))


@router.delete("/{workspace_id}")
def delete_workspace(request: Request, workspace_id: str) -> JSONResponse:
    with services_of(request).db.write() as session:
        return ok(service.delete(session, principal_of(request), workspace_id))


@router.post("/{workspace_id}/auth")
async def validate_authorization(
    request: Request, workspace_id: str, body: schemas.ValidateAuthorization
) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.validate_authorization(session, principal_of(request), workspace_id, body.requests))


@router.get("/{workspace_id}/quotas")
async def show_workspace_quotas(request: Request, workspace_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        workspace = require_workspace(
            session, principal_of(request), workspace_id, action="modelarts:workspace:getQuotas"
        )
        return ok({"quotas": quotas.list_quotas(session, workspace)})


@router.put("/{workspace_id}/quotas")
def update_workspace_quotas(request: Request, workspace_id: str, body: schemas.UpdateQuotas) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        workspace = require_workspace(
            session, principal_of(request), workspace_id, action="modelarts:workspace:updateQuotas", manage=True
        )
        changes = [(q.resource, q.quota) for q in body.quotas]
        return ok({"quotas": quotas.update_quotas(session, workspace, changes, to_ms(services.clock.now()))})
