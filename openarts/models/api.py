"""HTTP routes of model management: ``/v1/{project_id}/models`` (reference 2.1). Every answer is a 200."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.models import schemas, service
from openarts.models.package import ENGINE_PACKAGES, SERVED_TYPES, engine_available

router = APIRouter(
    prefix="/v1/{project_id}/models",
    route_class=route_class("ModelArts.3037"),
    dependencies=[Depends(authenticate)],
    tags=["models"],
)


@router.post("")
def create_model(request: Request, body: schemas.CreateModel) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = service.create_model(
            session, services.settings, principal_of(request), body, to_ms(services.clock.now())
        )
    service.wake_controller.set()
    return ok(payload)


@router.get("")
def list_models(request: Request) -> JSONResponse:
    query = parse_query(request, schemas.ListModelsQuery)
    with services_of(request).db.read() as session:
        return ok(service.list_models(session, principal_of(request), query))


@router.get("/ai-engine-runtimes")
def list_engine_runtimes(request: Request) -> JSONResponse:
    """The engines this server can serve (reference 2.7): those whose package its Python has."""
    engines = [t for t in SERVED_TYPES if engine_available(t)]
    items = [
        {
            "ai_engine": engine,
            "runtimes": [f"python3-local ({ENGINE_PACKAGES.get(engine, 'custom')})"],
            "request_mode": ["sync"],
            "accelerators": [{"type": "none"}],
            "arch": ["x86_64"],
            "status_list": ["normal"],
            "image_source": ["base_image"],
        }
        for engine in engines
    ]
    return ok({"count": len(items), "total_count": len(items), "engine_runtimes": items})


@router.get("/{model_id}")
def show_model(request: Request, model_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(service.show_model(session, principal_of(request), model_id))


@router.delete("/{model_id}")
def delete_model(request: Request, model_id: str) -> JSONResponse:
    query = parse_query(request, schemas.DeleteModelQuery)
    services = services_of(request)
    with services.db.write() as session:
        payload = service.delete_model(session, services.settings, principal_of(request), model_id, query.cascade)
    return ok(payload)
