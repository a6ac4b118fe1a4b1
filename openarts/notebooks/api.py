"""HTTP routes of notebook instances: ``/v1/{project_id}/notebooks...`` (reference C.1), and the proxy
that serves each instance's JupyterLab at its ``url`` (``/authoring/{id}/...``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import Services, services_of
from openarts.core.tags import TagsIn
from openarts.notebooks import errors, proxy, schemas, service, storage, tags
from openarts.notebooks.schemas import LeaseIn
from openarts.notebooks.tables import Notebook

router = APIRouter(
    prefix="/v1/{project_id}/notebooks",
    route_class=route_class("ModelArts.6400"),
    dependencies=[Depends(authenticate)],
    tags=["notebooks"],
)


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


def _base_url(request: Request) -> str:
    """Where this server is reached, as the caller reached it: instance URLs point back here."""
    return str(request.base_url)


def _committed(payload: object, status_code: int = 200) -> JSONResponse:
    """Answer a change once it is committed, and wake the controller to act on it."""
    service.wake_controller.set()
    return ok(payload, status_code)


# --- instances ---------------------------------------------------------------------------------------


@router.post("")
def create_notebook(request: Request, body: schemas.CreateNotebook) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.create(
            session, services.settings, principal_of(request), body, _now_ms(services), _base_url(request)
        )
    return _committed(payload)


@router.get("")
def list_notebooks(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_notebooks(session, principal_of(request), query, _base_url(request), everyone=False))


@router.get("/all")
def list_all_notebooks(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_notebooks(session, principal_of(request), query, _base_url(request), everyone=True))


@router.get("/flavors")
def list_flavors(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.FlavorQuery)
    services = services_of(request)
    with services.db.read() as session:
        return ok(
            service.list_flavors(session, services.settings, query.category, query.feature, query.limit, query.offset)
        )


@router.get("/tags")
def show_notebook_tags(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.WorkspaceQuery)
    with services_of(request).db.read() as session:
        return ok(tags.project_tags(session, principal_of(request), query.workspace_id))


@router.get("/{id}")
def show_notebook(request: Request, id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show(session, principal_of(request), id, _base_url(request)))


@router.put("/{id}")
def update_notebook(request: Request, id: str, body: schemas.UpdateNotebook) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.update(
            session, services.settings, principal_of(request), id, body, _now_ms(services), _base_url(request)
        )
    return _committed(payload)


@router.delete("/{id}")
def delete_notebook(request: Request, id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.delete(session, principal_of(request), id, _now_ms(services), _base_url(request))
    return _committed(payload)


@router.post("/{id}/start")
def start_notebook(request: Request, id: str) -> JSONResponse:
    query = parse_query(request, schemas.StartQuery)
    services = services_of(request)
    with services.db.write() as session:
        payload = service.start(
            session,
            services.settings,
            principal_of(request),
            id,
            query.duration,
            query.type,
            _now_ms(services),
            _base_url(request),
        )
    return _committed(payload)


@router.post("/{id}/stop")
def stop_notebook(request: Request, id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.stop(session, principal_of(request), id, _now_ms(services), _base_url(request))
    return _committed(payload)


@router.post("/{id}/create-image")
def create_image(request: Request, id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        service.get_notebook(session, principal_of(request), id)  # an unknown instance is still a 6309
    raise errors.image_saving_unsupported()


@router.get("/{id}/flavors")
def show_switchable_flavors(request: Request, id: str) -> JSONResponse:
    query = parse_query(request, schemas.PageQuery)
    services = services_of(request)
    with services.db.read() as session:
        return ok(
            service.switchable_flavors(session, services.settings, principal_of(request), id, query.limit, query.offset)
        )


# --- leases ------------------------------------------------------------------------------------------


@router.get("/{id}/lease")
def show_lease(request: Request, id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show_lease(session, principal_of(request), id))


@router.patch("/{id}/lease")
def renew_lease(request: Request, id: str, body: Annotated[LeaseIn | None, Body()] = None) -> JSONResponse:
    query = parse_query(request, schemas.StartQuery)
    services = services_of(request)
    with services.db.write() as session:
        payload = service.renew_lease(
            session,
            principal_of(request),
            id,
            query.duration,
            body.duration if body else None,
            body.type if body else None,
            _now_ms(services),
        )
    return _committed(payload)


# --- dynamic storage ----------------------------------------------------------------------------------


@router.post("/{instance_id}/storage")
def attach_dynamic_storage(request: Request, instance_id: str, body: schemas.StorageIn) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = storage.attach(session, principal_of(request), instance_id, body, _now_ms(services))
    return _committed(payload)


@router.get("/{instance_id}/storage")
def list_dynamic_storages(request: Request, instance_id: str) -> JSONResponse:
    query = parse_query(request, schemas.PageQuery)
    with services_of(request).db.read() as session:
        return ok(storage.list_storages(session, principal_of(request), instance_id, query))


@router.get("/{instance_id}/storage/{storage_id}")
def show_dynamic_storage(request: Request, instance_id: str, storage_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(storage.show(session, principal_of(request), instance_id, storage_id))


@router.delete("/{instance_id}/storage/{storage_id}")
def detach_dynamic_storage(request: Request, instance_id: str, storage_id: str) -> JSONResponse:
    with services_of(request).db.write() as session:
        payload = storage.detach(session, principal_of(request), instance_id, storage_id)
    return _committed(payload)


# --- tags ----------------------------------------------------------------------------------------------


@router.post("/{resource_id}/tags/create", status_code=204)
def create_notebook_tags(request: Request, resource_id: str, body: TagsIn) -> Response:
    query = parse_query(request, schemas.WorkspaceQuery)
    with services_of(request).db.write() as session:
        tags.add_tags(session, principal_of(request), resource_id, query.workspace_id, body)
    return Response(status_code=204)


@router.delete("/{resource_id}/tags/delete", status_code=204)
def delete_notebook_tags(request: Request, resource_id: str, body: TagsIn) -> Response:
    query = parse_query(request, schemas.WorkspaceQuery)
    with services_of(request).db.write() as session:
        tags.remove_tags(session, principal_of(request), resource_id, query.workspace_id, body)
    return Response(status_code=204)


# --- the proxy to each instance's JupyterLab ------------------------------------------------------------


def _upstream(services: Services, notebook_id: str) -> proxy.Upstream | None:
    """A running instance's Jupyter server; None for anything else (unknown, stopped, starting)."""
    with services.db.read() as session:
        row = session.execute(
            select(Notebook.port, Notebook.token).where(Notebook.id == notebook_id, Notebook.status == service.RUNNING)
        ).first()
    if row is None or row.port is None:
        return None
    return proxy.Upstream(instance_id=notebook_id, port=row.port, token=row.token)


authoring_router = proxy.build_router(_upstream)
