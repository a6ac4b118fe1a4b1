"""Tags on training jobs, and finding jobs by them (the TMS-style ``resource-instances`` queries)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr
from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session

from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.core.tags import MAX_TAGS, TagsIn, key_problem, wanted_tags
from openarts.training.jobs import errors, service
from openarts.training.jobs.tables import JobTag, TrainingJob
from openarts.workspaces.access import accessible_clause, accessible_params, require_workspace
from openarts.workspaces.tables import Workspace


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MultiValueTag(_Model):
    key: StrictStr
    values: Annotated[list[StrictStr], Field(max_length=10)] = []


class MatchIn(_Model):
    key: StrictStr
    value: Annotated[StrictStr, Field(min_length=1, max_length=255)]


class ResourceFilter(_Model):
    workspace_id: StrictStr | None = None
    tags: Annotated[list[MultiValueTag], Field(max_length=10)] = []
    without_any_tag: StrictBool = False
    matches: Annotated[list[MatchIn], Field(max_length=1)] = []


def _check_key(key: str) -> None:
    problem = key_problem(key)
    if problem:
        raise errors.invalid_param(problem)


def job_tags(session: Session, job_id: str) -> list[dict[str, str]]:
    rows = session.scalars(select(JobTag).where(JobTag.job_id == job_id).order_by(JobTag.key))
    return [{"key": tag.key, "value": tag.value} for tag in rows]


def add_tags(session: Session, principal: Principal, job_id: str, body: TagsIn) -> None:
    """An existing key gets the new value; all or nothing, at most 20 tags per job."""
    job = service.get_job(session, principal, job_id, lock=True)
    wanted = wanted_tags(body, errors.invalid_param)
    current = {tag.key: tag for tag in session.scalars(select(JobTag).where(JobTag.job_id == job.id))}
    if len(set(current) | set(wanted)) > MAX_TAGS:
        raise errors.invalid_param(f"a job has at most {MAX_TAGS} tags.")
    for key, value in wanted.items():
        if key in current:
            current[key].value = value
        else:
            session.add(JobTag(job_id=job.id, key=key, value=value))


def remove_tags(session: Session, principal: Principal, job_id: str, body: TagsIn) -> None:
    """A tag given with a value goes only if the value matches; without one it goes whatever its value."""
    job = service.get_job(session, principal, job_id, lock=True)
    for tag in body.tags:
        _check_key(tag.key)
        row = session.get(JobTag, (job.id, tag.key))
        if row is not None and (tag.value is None or tag.value == row.value):
            session.delete(row)


def _visible_jobs(principal: Principal) -> Any:
    join = and_(Workspace.project_id == TrainingJob.project_id, Workspace.id == TrainingJob.workspace_id)
    return (
        select(TrainingJob)
        .join(Workspace, join)
        .where(
            TrainingJob.project_id == principal.project_id,
            TrainingJob.delete_requested.is_(False),
            accessible_clause(),
        )
    )


def project_tags(session: Session, principal: Principal, offset: int, limit: int) -> dict[str, Any]:
    jobs = _visible_jobs(principal).with_only_columns(TrainingJob.id).subquery()
    rows = session.execute(
        select(JobTag.key, JobTag.value).where(JobTag.job_id.in_(select(jobs.c.id))).distinct().order_by(JobTag.key),
        accessible_params(principal),
    ).all()
    grouped: dict[str, list[str]] = {}
    for key, value in rows:
        grouped.setdefault(key, [])
        if value not in grouped[key]:
            grouped[key].append(value)
    keys = sorted(grouped)[offset : offset + limit]
    return {"tags": [{"key": key, "values": sorted(grouped[key])} for key in keys]}


def _filtered(session: Session, principal: Principal, query: ResourceFilter) -> Any:
    statement = _visible_jobs(principal)
    if query.workspace_id is not None:
        require_workspace(session, principal, query.workspace_id, action="modelarts:trainJob:list")
        statement = statement.where(TrainingJob.workspace_id == query.workspace_id)
    keys = [tag.key for tag in query.tags]
    if len(set(keys)) != len(keys):
        raise errors.invalid_param("each tag key may appear once in tags.")
    for tag in query.tags:
        if len(set(tag.values)) != len(tag.values):
            raise errors.invalid_param(f"the values of tag key {tag.key} repeat.")
    if query.without_any_tag:  # the SDK: "设为true时忽略tags筛选条件" (true ignores the tags filter)
        statement = statement.where(~exists().where(JobTag.job_id == TrainingJob.id))
    else:
        for tag in query.tags:  # AND across keys, OR within the values of one key
            condition = [JobTag.job_id == TrainingJob.id, JobTag.key == tag.key]
            if tag.values:
                condition.append(JobTag.value.in_(tag.values))
            statement = statement.where(exists().where(*condition))
    for match in query.matches:
        if match.key != "resource_name":
            raise errors.invalid_param(f"match key {match.key} is not supported; use resource_name.")
        statement = statement.where(contains(TrainingJob.name, match.value))
    return statement


def find_by_tags(
    session: Session, principal: Principal, query: ResourceFilter, offset: int, limit: int
) -> dict[str, Any]:
    statement = _filtered(session, principal, query)
    params = accessible_params(principal)
    total = len(session.scalars(statement.with_only_columns(TrainingJob.id), params).all())
    jobs = session.scalars(statement.order_by(TrainingJob.create_time.desc()).offset(offset).limit(limit), params)
    return {
        "resources": [
            {
                "resource_detail": {},
                "workspace_id": job.workspace_id,
                "resource_id": job.id,
                "resource_name": job.name,
                "tags": job_tags(session, job.id),
            }
            for job in jobs
        ],
        "total_count": total,
    }


def count_by_tags(session: Session, principal: Principal, query: ResourceFilter) -> int:
    statement = _filtered(session, principal, query)
    return len(session.scalars(statement.with_only_columns(TrainingJob.id), accessible_params(principal)).all())
