"""HTTP routes of training jobs: ``/v2/{project_id}/training-jobs...`` and the catalogues they use."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from openarts.compute import engines, flavors
from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import Services, services_of
from openarts.storage.store import ObjectStore
from openarts.training.jobs import errors, observe, schemas, service
from openarts.training.jobs.workdir import JobDir

router = APIRouter(
    prefix="/v2/{project_id}",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["training jobs"],
)


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


def _folder(services: Services, job_id: str) -> JobDir:
    return JobDir(services.settings.jobs_dir / job_id)


# --- jobs --------------------------------------------------------------------------------------


@router.post("/training-jobs", status_code=201)
def create_training_job(request: Request, body: schemas.CreateJob) -> JSONResponse:
    services = services_of(request)
    store = ObjectStore(services.settings)
    with services.db.write() as session:
        job = service.create(session, services.settings, store, principal_of(request), body, _now_ms(services))
    service.wake_controller.set()
    return ok(job, status_code=201)


@router.post("/training-job-searches")
def list_training_jobs(request: Request, body: schemas.JobSearch) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        return ok(service.list_jobs(session, services.settings, principal_of(request), body, _now_ms(services)))


@router.post("/training-jobs/batch-delete", status_code=202)
def batch_delete_training_job(request: Request, body: schemas.BatchDelete) -> Response:
    services = services_of(request)
    ids = []
    for item in body.jobs:
        job_id = item.metadata.get("id")
        if not isinstance(job_id, str) or not job_id:
            raise errors.invalid_param("each job needs metadata.id.")
        ids.append(job_id)
    with services.db.write() as session:
        service.batch_delete(session, principal_of(request), ids, _now_ms(services))
    service.wake_controller.set()
    return Response(status_code=202)


@router.get("/training-jobs/{training_job_id}")
def show_training_job_details(request: Request, training_job_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        return ok(service.show(session, services.settings, principal_of(request), training_job_id, _now_ms(services)))


@router.put("/training-jobs/{training_job_id}")
def change_training_job_description(request: Request, training_job_id: str, body: schemas.UpdateJob) -> Response:
    services = services_of(request)
    with services.db.write() as session:
        service.update_description(session, principal_of(request), training_job_id, body.description)
    return Response(content=b"null", media_type="application/json")


@router.delete("/training-jobs/{training_job_id}", status_code=202)
def delete_training_job(request: Request, training_job_id: str) -> Response:
    services = services_of(request)
    with services.db.write() as session:
        service.delete(session, principal_of(request), training_job_id, _now_ms(services))
    service.wake_controller.set()
    return Response(status_code=202)


@router.post("/training-jobs/{training_job_id}/actions", status_code=202)
def stop_training_job(request: Request, training_job_id: str, body: schemas.JobAction) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        job = service.stop(
            session, services.settings, principal_of(request), training_job_id, body.action_type, _now_ms(services)
        )
    service.wake_controller.set()
    return ok(job, status_code=202)


# --- what a job shows of itself ----------------------------------------------------------------


@router.get("/training-jobs/{training_job_id}/tasks")
def list_training_job_tasks(request: Request, training_job_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
        return ok(observe.tasks(job))


@router.get("/training-jobs/{training_job_id}/tasks/{task_id}/logs/preview")
def show_training_job_logs_preview(request: Request, training_job_id: str, task_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
    observe.check_task(job, task_id)
    return ok(observe.log_preview(_folder(services, job.id)))


class LogQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    base_line: Annotated[str, Field(max_length=32)] | None = None
    lines: Annotated[int, Field(ge=1, le=500)] = 50
    order: Literal["asc", "desc"] = "desc"


@router.get("/training-jobs/{training_job_id}/logs/{task_id}")
def show_training_job_logs_from_aom(request: Request, training_job_id: str, task_id: str) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, LogQuery)
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
    observe.check_task(job, task_id)
    return ok(observe.log_lines(_folder(services, job.id), query.base_line, query.lines, query.order))


@router.get("/training-jobs/{training_job_id}/metrics/{task_id}")
def show_training_job_metrics(request: Request, training_job_id: str, task_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
        observe.check_task(job, task_id)
        return ok(observe.metrics(session, job))


class EventQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    offset: Annotated[int, Field(ge=0)] = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 50
    order: Literal["asc", "desc"] = "desc"
    level: Literal["Info", "Warning", "Error"] | None = None
    pattern: Annotated[str, Field(max_length=256)] | None = None
    start_time: int | None = None
    end_time: int | None = None


@router.get("/training-jobs/{training_job_id}/events")
def list_training_job_events(request: Request, training_job_id: str) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, EventQuery)
    if (query.start_time is None) != (query.end_time is None):
        raise errors.invalid_param("start_time and end_time go together.")
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
        return ok(observe.events(session, job, **query.model_dump()))


@router.get("/training-jobs/{training_job_id}/stages")
def list_training_job_stages(request: Request, training_job_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
    records = [] if not job.start_time else [{"record_order": 0, "stages": []}]
    return ok({"total_count": len(records), "running_records": records})


@router.post("/training-jobs/{training_job_id}/tasks/{task_id}/reports/{report_type}")
def notify_training_job_information(
    request: Request, training_job_id: str, task_id: str, report_type: str, body: dict[str, Any] | None = None
) -> Response:
    services = services_of(request)
    if not report_type.isidentifier() or len(report_type) > 64:
        raise errors.invalid_param("report_type must be a short identifier.")
    with services.db.write() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
        observe.check_task(job, task_id)
        detail = json.dumps(body or {}, ensure_ascii=False)[:1024]
        service.add_event(session, job.id, _now_ms(services), f"Task {task_id} reported {report_type}: {detail}")
    return Response(status_code=200)


# --- catalogues --------------------------------------------------------------------------------


class NameQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    job_name: Annotated[str, Field(min_length=1, max_length=64)]
    workspace_id: Annotated[str, Field(max_length=64)] = "0"


@router.get("/training-job-names")
def validate_training_job_name(request: Request) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, NameQuery)
    with services.db.read() as session:
        taken = service.name_taken(session, principal_of(request), query.job_name, query.workspace_id)
    return ok({"is_duplicate": taken})


class FlavorQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    flavor_type: Literal["CPU", "GPU", "Ascend"] | None = None


@router.get("/training-job-flavors")
def show_training_job_flavors(request: Request) -> JSONResponse:
    settings = services_of(request).settings
    query = parse_query(request, FlavorQuery)
    items = [
        {**flavor.to_wire(), "support_engines": "[]", "support_groups": "public"}
        for flavor in flavors.catalogue(settings)
        if query.flavor_type is None or flavor.flavor_type == query.flavor_type
    ]
    return ok({"total_count": len(items), "flavors": items})


@router.get("/training-job-engines")
def show_training_job_engines(request: Request) -> JSONResponse:
    items = [engine.to_wire() for engine in engines.catalogue(services_of(request).settings)]
    return ok({"total": len(items), "items": items})
