"""HTTP routes of services: ``/v1/{project_id}/services`` (reference 4.1). Every answer is a 200."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import Services, services_of
from openarts.services import schemas, service
from openarts.services.routing import TABLE

router = APIRouter(
    prefix="/v1/{project_id}/services",
    route_class=route_class("ModelArts.3037"),
    dependencies=[Depends(authenticate)],
    tags=["services"],
)


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


def _committed(payload: object) -> JSONResponse:
    service.wake_controller.set()
    return ok(payload)


@router.post("")
def deploy_service(request: Request, body: schemas.DeployService) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.deploy_service(session, services.settings, principal_of(request), body, _now_ms(services))
    return _committed(payload)


@router.get("")
def list_services(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListServicesQuery)
    with TABLE.flushing, services_of(request).db.read() as session:
        return ok(service.list_services(session, principal_of(request), query))


@router.get("/specifications")
def list_specifications(request: Request) -> JSONResponse:
    parse_query(request, schemas.SpecificationsQuery)
    return ok(service.list_specifications(services_of(request).settings))


@router.get("/{service_id}")
def show_service(request: Request, service_id: str) -> JSONResponse:
    with TABLE.flushing, services_of(request).db.read() as session:
        return ok(service.show_service(session, principal_of(request), service_id, str(request.base_url)))


@router.put("/{service_id}")
def update_service(request: Request, service_id: str, body: schemas.UpdateService) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.update_service(
            session, services.settings, principal_of(request), service_id, body, _now_ms(services)
        )
    return _committed(payload)


@router.delete("/{service_id}")
def delete_service(request: Request, service_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.delete_services(session, principal_of(request), service_id, _now_ms(services))
    return _committed(payload)


@router.get("/{service_id}/events")
def list_events(request: Request, service_id: str) -> JSONResponse:
    query = parse_query(request, schemas.EventsQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_events(session, principal_of(request), service_id, query))


@router.get("/{service_id}/logs")
def list_logs(request: Request, service_id: str) -> JSONResponse:
    query = parse_query(request, schemas.LogsQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_logs(session, principal_of(request), service_id, query.update_time))


@router.get("/{service_id}/monitor")
def show_monitor(request: Request, service_id: str) -> JSONResponse:
    with TABLE.flushing, services_of(request).db.read() as session:
        return ok(service.monitor(session, principal_of(request), service_id))
