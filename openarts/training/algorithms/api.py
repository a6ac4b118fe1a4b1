"""HTTP routes of algorithms: ``/v2/{project_id}/algorithms...``.

Success codes as ModelArts documents them: create and change answer 201 with the algorithm, delete
202 with an empty body. Reads run on the event loop (indexed queries that never wait on the write
lock); writes run in the thread pool.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.training.algorithms import schemas, service

router = APIRouter(
    prefix="/v2/{project_id}/algorithms",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["training"],
)


@router.get("")
async def list_algorithms(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_algorithms(session, principal_of(request), query))


@router.post("")
def create_algorithm(request: Request, body: schemas.CreateAlgorithm) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.create(session, principal_of(request), body, services.settings, now_ms), 201)


@router.get("/{algorithm_id}")
async def show_algorithm_by_uuid(request: Request, algorithm_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show(session, principal_of(request), algorithm_id))


@router.put("/{algorithm_id}")
def change_algorithm(request: Request, algorithm_id: str, body: schemas.ChangeAlgorithm) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        wire = service.change(session, principal_of(request), algorithm_id, body, services.settings, now_ms)
        return ok(wire, 201)


@router.delete("/{algorithm_id}")
def delete_algorithm(request: Request, algorithm_id: str) -> Response:
    with services_of(request).db.write() as session:
        service.delete(session, principal_of(request), algorithm_id)
    return Response(status_code=202)
