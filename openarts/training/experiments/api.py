"""HTTP routes of training experiments: ``/v2/{project_id}/training-experiments...`` and the name check.

Success codes as ModelArts documents them: create 201, change 200 with ``{name, description}``,
delete 202 with an empty body, reads 200.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.training.experiments import schemas, service

router = APIRouter(
    prefix="/v2/{project_id}",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["training"],
)


@router.get("/training-experiment-names")
async def check_training_experiment(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.NameQuery)
    with services_of(request).db.read() as session:
        return ok(service.check_name(session, principal_of(request), query))


@router.get("/training-experiments")
async def list_training_experiments(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_experiments(session, principal_of(request), query))


@router.post("/training-experiments")
def create_training_experiment(request: Request, body: schemas.CreateExperiment) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.create(session, principal_of(request), body, now_ms), 201)


@router.get("/training-experiments/{experiment_id}")
async def show_training_experiment_details(request: Request, experiment_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show(session, principal_of(request), experiment_id))


@router.put("/training-experiments/{experiment_id}")
def change_training_experiment(request: Request, experiment_id: str, body: schemas.ChangeExperiment) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        now_ms = to_ms(services.clock.now())
        return ok(service.change(session, principal_of(request), experiment_id, body, now_ms))


@router.delete("/training-experiments/{experiment_id}")
def delete_training_experiment(request: Request, experiment_id: str) -> Response:
    with services_of(request).db.write() as session:
        service.delete(session, principal_of(request), experiment_id)
    return Response(status_code=202)
