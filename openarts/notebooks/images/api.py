"""HTTP routes of images: ``/v1/{project_id}/images...``. Every success is a 200, as ModelArts answers.

Reads run on the event loop (indexed queries that never wait on the write lock). Registering and
syncing run in the thread pool in three steps: check what the database says (a read), run the
environment's interpreter (seconds, holding no lock), record the result (a short write).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.notebooks.images import environments, errors, schemas, service

router = APIRouter(
    prefix="/v1/{project_id}/images",
    route_class=route_class(errors.VALIDATION_CODE),
    dependencies=[Depends(authenticate)],
    tags=["notebooks"],
)


@router.get("")
async def list_image(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListImagesQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_images(session, principal_of(request), query))


@router.post("")
def register_image(request: Request, body: schemas.RegisterImage) -> JSONResponse:
    services = services_of(request)
    principal = principal_of(request)
    with services.db.read() as session:
        ref = service.check_registration(session, principal, body)
    inspection = service.inspect_registration(body, ref)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.register(session, principal, body, ref, inspection, now_ms))


# Declared before "/{image_id}", which would otherwise take "group" for an image id.
@router.get("/group")
async def list_image_group(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListGroupsQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_groups(session, principal_of(request), query))


@router.delete("/group/{group_id}")
def delete_image_group(request: Request, group_id: str, body: schemas.DeleteImage | None = None) -> JSONResponse:
    with services_of(request).db.write() as session:
        return ok(service.delete_group(session, principal_of(request), group_id))


@router.put("/group/{group_id}")
def update_image_group(request: Request, group_id: str, body: schemas.UpdateGroup) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.update_group(session, principal_of(request), group_id, body, now_ms))


@router.get("/{image_id}")
async def show_image(request: Request, image_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show(session, principal_of(request), image_id))


@router.delete("/{image_id}")
def delete_image(request: Request, image_id: str, body: schemas.DeleteImage | None = None) -> JSONResponse:
    with services_of(request).db.write() as session:
        return ok(service.delete_image(session, principal_of(request), image_id))


@router.post("/{image_id}/sync")
def sync_image(request: Request, image_id: str) -> JSONResponse:
    services = services_of(request)
    principal = principal_of(request)
    with services.db.read() as session:
        target = service.sync_target(session, principal, image_id)
    if isinstance(target, dict):
        return ok(target)  # a built-in image: the server's own environment
    inspection = environments.inspect(target)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.record_sync(session, principal, image_id, inspection, now_ms))
