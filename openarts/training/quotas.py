"""``/v2/{project_id}/training-quotas``: per-user training quotas (how many jobs a user may keep, ...).

ModelArts documents four resources; ``job-num`` is enforced when a job is created, the others are
stored and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr
from sqlalchemy import ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from openarts.core import errors
from openarts.core.auth import authenticate, principal_of
from openarts.core.db import Base
from openarts.core.errors import ApiError
from openarts.core.http import ok, parse_query, route_class
from openarts.core.identity.service import Principal
from openarts.core.identity.tables import User
from openarts.core.services import services_of


@dataclass(frozen=True)
class Resource:
    name: str
    default: int
    minimum: int
    maximum: int


RESOURCES = {
    r.name: r
    for r in (
        Resource("job-num", 1000, 1, 100_000),
        Resource("visual-job-num", 10, 1, 1000),
        Resource("job-retention-enabled", 0, 0, 1),
        Resource("job-num-quota-notify", 0, 0, 0),
    )
}


class TrainingQuota(Base):
    __tablename__ = "training_quotas"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    quota: Mapped[int]
    extra_info: Mapped[str] = mapped_column(String(1024), default="")


def exceeded(resource: str, quota: int) -> ApiError:
    return ApiError(
        400,
        "ModelArts.2815",
        f"ExceedQuotaLimit: the {resource} quota of {quota} is used up.",
        solution="Delete jobs, or ask the main account to raise the quota with PUT training-quotas.",
    )


def quota_of(session: Session, project_id: str, user_id: str, resource: str) -> tuple[int, str]:
    row = session.get(TrainingQuota, (project_id, user_id, resource))
    return (row.quota, row.extra_info) if row else (RESOURCES[resource].default, "")


def _used(session: Session, project_id: str, user_id: str, resource: str) -> int:
    if resource != "job-num":
        return 0
    from openarts.training.jobs.tables import TrainingJob

    query = select(func.count()).where(TrainingJob.project_id == project_id, TrainingJob.user_id == user_id)
    return session.scalar(query) or 0


def check_job_quota(session: Session, principal: Principal) -> None:
    quota, _ = quota_of(session, principal.project_id, principal.user_id, "job-num")
    if _used(session, principal.project_id, principal.user_id, "job-num") >= quota:
        raise exceeded("job-num", quota)


def _user(session: Session, principal: Principal, user_id: str | None, *, change: bool) -> str:
    """Users see their own quotas; the main account sees and sets those of every user of its project."""
    if user_id is None or user_id == principal.user_id:
        if change and not principal.is_admin:
            raise errors.forbidden("modelarts:trainJob:modifyQuotas")
        return principal.user_id
    if not principal.is_admin:
        raise errors.forbidden("modelarts:trainJob:getQuotas of another user")
    user = session.get(User, user_id)
    if user is None or user.project_id != principal.project_id:
        raise errors.invalid_argument(f"Invalid Argument: user {user_id} does not exist.", "ModelArts.2788")
    return user_id


def _entry(session: Session, project_id: str, user_id: str, resource: str) -> dict[str, Any]:
    quota, extra_info = quota_of(session, project_id, user_id, resource)
    entry: dict[str, Any] = {
        "resource": resource,
        "quota": quota,
        "used": _used(session, project_id, user_id, resource),
    }
    if extra_info:
        entry["extra_info"] = extra_info
    return entry


class QuotaQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    user_id: Annotated[str, Field(max_length=64)] | None = None
    resource: Annotated[str, Field(max_length=64)] | None = None


class QuotaItem(BaseModel):
    model_config = ConfigDict(extra="forbid")
    resource: StrictStr
    quota: StrictInt
    used: StrictInt | None = None  # reported by the server; ignored when given
    extra_info: Annotated[StrictStr, Field(max_length=1024)] | None = None


class ModifyQuotas(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: StrictStr | None = None
    quotas: Annotated[list[QuotaItem], Field(min_length=1, max_length=len(RESOURCES))]


router = APIRouter(
    prefix="/v2/{project_id}/training-quotas",
    route_class=route_class("ModelArts.2788"),
    dependencies=[Depends(authenticate)],
    tags=["training quotas"],
)


@router.get("")
def show_training_quotas(request: Request) -> JSONResponse:
    query = parse_query(request, QuotaQuery)
    principal = principal_of(request)
    if query.resource is not None and query.resource not in RESOURCES:
        raise errors.invalid_argument(f"Invalid Argument: unknown resource {query.resource}.", "ModelArts.2788")
    with services_of(request).db.read() as session:
        user_id = _user(session, principal, query.user_id, change=False)
        names = [query.resource] if query.resource else list(RESOURCES)
        return ok({"quotas": [_entry(session, principal.project_id, user_id, name) for name in names]})


@router.put("")
def modify_training_quotas(request: Request, body: ModifyQuotas) -> JSONResponse:
    principal = principal_of(request)
    for item in body.quotas:  # validate everything before changing anything
        spec = RESOURCES.get(item.resource)
        if spec is None:
            raise errors.invalid_argument(f"Invalid Argument: unknown resource {item.resource}.", "ModelArts.2788")
        if not spec.minimum <= item.quota <= spec.maximum:
            raise errors.invalid_argument(
                f"Invalid Argument: {item.resource} takes a quota in [{spec.minimum}, {spec.maximum}].",
                "ModelArts.2788",
            )
    if len({item.resource for item in body.quotas}) != len(body.quotas):
        raise errors.invalid_argument("Invalid Argument: a resource is given twice.", "ModelArts.2788")
    with services_of(request).db.write() as session:
        user_id = _user(session, principal, body.user_id, change=True)
        for item in body.quotas:
            row = session.get(TrainingQuota, (principal.project_id, user_id, item.resource))
            if row is None:
                row = TrainingQuota(project_id=principal.project_id, user_id=user_id, resource=item.resource)
                session.add(row)
            row.quota = item.quota
            row.extra_info = item.extra_info or ""
        session.flush()
        entries = [_entry(session, principal.project_id, user_id, item.resource) for item in body.quotas]
    return ok({"user_id": user_id, "quotas": entries})
