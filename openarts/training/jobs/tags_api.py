"""HTTP routes of training job tags, under the SDK's path and the two spellings the manuals use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from openarts.core.auth import authenticate, principal_of
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import services_of
from openarts.core.tags import TagsIn
from openarts.training.jobs import service, tags

router = APIRouter(
    prefix="/v2/{project_id}",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["training job tags"],
)


class Page(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: Annotated[int, Field(ge=1, le=1000)] = 1000
    offset: Annotated[int, Field(ge=0)] = 0


@router.get("/modelarts-training-job/tags")
def list_training_job_tags(request: Request) -> JSONResponse:
    page = parse_query(request, Page)
    with services_of(request).db.read() as session:
        return ok(tags.project_tags(session, principal_of(request), page.offset, page.limit))


@router.post("/modelarts-training-job/resource-instances/filter")
def list_training_jobs_by_tags(request: Request, body: tags.ResourceFilter) -> JSONResponse:
    page = parse_query(request, Page)
    with services_of(request).db.read() as session:
        return ok(tags.find_by_tags(session, principal_of(request), body, page.offset, page.limit))


@router.post("/modelarts-training-job/resource-instances/count")
def count_training_jobs_by_tags(request: Request, body: tags.ResourceFilter) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok({"total_count": tags.count_by_tags(session, principal_of(request), body)})


@router.get("/modelarts-training-job/{training_job_id}/tags")
def show_train_job_tags(request: Request, training_job_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        job = service.get_job(session, principal_of(request), training_job_id)
        return ok({"tags": tags.job_tags(session, job.id)})


@router.post("/modelarts-training-job/{training_job_id}/tags/create", status_code=204)
@router.post("/trainJob/{training_job_id}/tags/create", status_code=204, include_in_schema=False)
def create_train_job_tags(request: Request, training_job_id: str, body: TagsIn) -> Response:
    with services_of(request).db.write() as session:
        tags.add_tags(session, principal_of(request), training_job_id, body)
    return Response(status_code=204)


@router.delete("/modelarts-training-job/{training_job_id}/tags/delete", status_code=204)
@router.delete("/modelarts-trainJob/{training_job_id}/tags/delete", status_code=204, include_in_schema=False)
def delete_train_job_tags(request: Request, training_job_id: str, body: TagsIn) -> Response:
    with services_of(request).db.write() as session:
        tags.remove_tags(session, principal_of(request), training_job_id, body)
    return Response(status_code=204)
