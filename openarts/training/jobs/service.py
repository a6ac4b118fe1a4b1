"""Training job rules: create, find, list, stop, update, delete. Processes are the controller's."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy import ColumnElement, and_, asc, desc, func, select
from sqlalchemy.orm import Session

from openarts.compute import claims
from openarts.compute.capacity import Demand
from openarts.compute.flavors import find_flavor
from openarts.config import Settings
from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.storage.store import ObjectStore
from openarts.training import quotas as training_quotas
from openarts.training.experiments import service as experiments_service
from openarts.training.jobs import errors, plan
from openarts.training.jobs.schemas import CreateJob, FilterIn, JobSearch
from openarts.training.jobs.tables import JobEvent, TrainingJob
from openarts.training.jobs.wire import job_to_wire
from openarts.workspaces import quotas
from openarts.workspaces import service as workspace_service
from openarts.workspaces.access import accessible_clause, accessible_params, can_access, require_workspace
from openarts.workspaces.tables import Workspace

ACTIVE = ("Creating", "Pending", "Running", "Terminating")
STOPPABLE = ("Creating", "Pending", "Running")

# Set once a change the controller must act on is committed (never before: it would look too early and
# then sleep a whole poll), and when a job's process exits.
wake_controller = threading.Event()


# --- quotas and workspace bookkeeping ----------------------------------------------------------


def _count(session: Session, project_id: str, workspace_id: str, *conditions: ColumnElement[bool]) -> int:
    query = (
        select(func.count())
        .select_from(TrainingJob)
        .where(TrainingJob.project_id == project_id, TrainingJob.workspace_id == workspace_id, *conditions)
    )
    return session.scalar(query) or 0


def _jobs_used(session: Session, project_id: str, workspace_id: str) -> int:
    return _count(session, project_id, workspace_id)


def _concurrent_used(session: Session, project_id: str, workspace_id: str) -> int:
    return _count(session, project_id, workspace_id, TrainingJob.phase.in_(ACTIVE))


def _minutes_used(session: Session, project_id: str, workspace_id: str) -> int:
    rows = session.execute(
        select(TrainingJob.start_time, TrainingJob.end_time).where(
            TrainingJob.project_id == project_id, TrainingJob.workspace_id == workspace_id, TrainingJob.start_time > 0
        )
    ).all()
    now_ms = max((end for _, end in rows), default=0)
    total_ms = sum(((end or now_ms) - start) for start, end in rows if (end or now_ms) > start)
    return total_ms // 60000


quotas.register_usage("trainJob.num", _jobs_used)
quotas.register_usage("trainJob.concurrent_num", _concurrent_used)
quotas.register_usage("trainJob.duration", _minutes_used)
workspace_service.resource_holders["training jobs"] = _jobs_used


def _jobs_in_experiment(session: Session, experiment_id: str) -> int:
    return session.scalar(select(func.count()).where(TrainingJob.experiment_id == experiment_id)) or 0


experiments_service.job_counters.append(_jobs_in_experiment)


def job_demand(job_id: str, cpus: float, memory_gb: float, launch: dict[str, Any]) -> Demand:
    """What a job takes from the capacity pool, from its row: ``cpus`` and ``memory_gb`` are already the
    whole job's (the flavor times its nodes, see ``create``); the plan lists one node's GPUs."""
    gpus = len(launch.get("gpus") or []) * int(launch.get("node_count") or 1)
    return Demand(job_id, cpus, memory_gb, gpus)


def _held_capacity(session: Session) -> list[Demand]:
    """What running training jobs hold of the shared capacity pool (see ``compute/claims.py``)."""
    rows = session.execute(
        select(TrainingJob.id, TrainingJob.cpus, TrainingJob.memory_gb, TrainingJob.launch).where(
            TrainingJob.phase.in_(("Running", "Terminating"))
        )
    ).all()
    return [job_demand(r.id, r.cpus, r.memory_gb, r.launch) for r in rows]


claims.register_holder("training", _held_capacity)


def add_event(session: Session, job_id: str, now_ms: int, message: str, level: str = "Info") -> None:
    session.add(JobEvent(job_id=job_id, time=now_ms, level=level, source="Job", message=message))


# --- create, find ------------------------------------------------------------------------------


def create(
    session: Session,
    settings: Settings,
    store: ObjectStore,
    principal: Principal,
    body: CreateJob,
    now_ms: int,
) -> dict[str, Any]:
    workspace_id = body.metadata.workspace_id
    require_workspace(session, principal, workspace_id, action="modelarts:trainJob:create", lock=True)
    if body.kind != "job":
        raise errors.invalid_param(f"kind {body.kind} is not supported; use job.")
    if name_taken(session, principal, body.metadata.name, workspace_id):
        raise errors.duplicate_name(body.metadata.name)
    training_quotas.check_job_quota(session, principal)
    for resource in ("trainJob.num", "trainJob.concurrent_num"):
        quotas.check_quota(session, principal, workspace_id, resource)
    quotas.check_quota(session, principal, workspace_id, "trainJob.duration", amount=0)
    algorithm, launch, flavor = plan.resolve(settings, store, session, principal, body)
    experiment = _experiment(session, principal, body)
    seq = (session.scalar(select(func.max(TrainingJob.queue_seq))) or 0) + 1
    spec = body.spec.model_dump(exclude_none=True)
    # The row holds the whole job's share of the pool: the flavor on each of its nodes.
    demand = flavor.demand("", launch["node_count"])
    job = TrainingJob(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=workspace_id,
        name=body.metadata.name,
        kind=body.kind,
        description=body.metadata.description,
        user_id=principal.user_id,
        user_name=principal.user_name,
        create_time=now_ms,
        annotations=body.metadata.annotations or {},
        experiment=experiment,
        experiment_id=experiment["id"] if experiment else None,
        algorithm=algorithm,
        spec=spec,
        launch=launch,
        cpus=demand.cpus,
        memory_gb=demand.memory_gb,
        queue_seq=seq,
        phase="Creating",
        secondary_phase="Creating",
        message="",
    )
    session.add(job)
    session.flush()
    add_event(session, job.id, now_ms, "Job created.")
    return job_to_wire(job, flavor, now_ms)


def _experiment(session: Session, principal: Principal, body: CreateJob) -> dict[str, Any] | None:
    reference = body.metadata.training_experiment_reference
    if reference is None or not (reference.id or reference.name):
        return None
    found = experiments_service.resolve_experiment(
        session, principal, body.metadata.workspace_id, experiment_id=reference.id, name=reference.name
    )
    return experiments_service.experiment_reference(found, experiments_service.next_serial_number(session, found))


def name_taken(session: Session, principal: Principal, name: str, workspace_id: str) -> bool:
    clash = session.scalar(
        select(TrainingJob.id).where(
            TrainingJob.project_id == principal.project_id,
            TrainingJob.workspace_id == workspace_id,
            TrainingJob.name == name,
        )
    )
    return clash is not None


def get_job(session: Session, principal: Principal, job_id: str, *, lock: bool = False) -> TrainingJob:
    """The job, if the caller may see it; jobs of workspaces it may not use look absent."""
    query = select(TrainingJob).where(TrainingJob.id == job_id, TrainingJob.project_id == principal.project_id)
    if lock:
        query = query.with_for_update()
    job = session.scalar(query)
    if job is None or job.delete_requested:
        raise errors.job_not_found(job_id)
    workspace = session.get(Workspace, (job.project_id, job.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise errors.job_not_found(job_id)
    return job


def show(session: Session, settings: Settings, principal: Principal, job_id: str, now_ms: int) -> dict[str, Any]:
    job = get_job(session, principal, job_id)
    return job_to_wire(job, find_flavor(settings, job.spec["resource"]["flavor_id"]), now_ms)


# --- list --------------------------------------------------------------------------------------

SORTABLE = {"create_time": TrainingJob.create_time, "name": TrainingJob.name, "phase": TrainingJob.phase}


def _condition(item: FilterIn) -> ColumnElement[bool]:
    operators = {
        "name": ("like",),
        "phase": ("in", "not"),
        "kind": ("in", "not"),
        "user_id": ("in", "not"),
        "create_time": ("between",),
    }
    if item.key not in operators:
        raise errors.unsupported_filter(item.key)
    if item.operator not in operators[item.key]:
        raise errors.unsupported_operator(item.key, item.operator)
    if not item.value:
        raise errors.invalid_param(f"filter on {item.key} needs a value.")
    if item.key == "name":
        return contains(TrainingJob.name, item.value[0])
    if item.key == "create_time":
        try:
            low, high = (int(v) for v in item.value)
        except ValueError:
            raise errors.invalid_param("create_time between takes two times in milliseconds.") from None
        return TrainingJob.create_time.between(low, high)
    column = {"phase": TrainingJob.phase, "kind": TrainingJob.kind, "user_id": TrainingJob.user_id}[item.key]
    return column.in_(item.value) if item.operator == "in" else column.not_in(item.value)


def list_jobs(
    session: Session, settings: Settings, principal: Principal, search: JobSearch, now_ms: int
) -> dict[str, Any]:
    if search.sort_by not in SORTABLE:
        raise errors.unsupported_sort(search.sort_by)
    conditions = [TrainingJob.project_id == principal.project_id, TrainingJob.delete_requested.is_(False)]
    if search.workspace_id is not None:
        require_workspace(session, principal, search.workspace_id, action="modelarts:trainJob:list")
        conditions.append(TrainingJob.workspace_id == search.workspace_id)
    conditions += [_condition(item) for item in search.filters]
    visible = and_(Workspace.project_id == TrainingJob.project_id, Workspace.id == TrainingJob.workspace_id)
    base = select(TrainingJob).join(Workspace, visible).where(*conditions, accessible_clause())
    params = {**accessible_params(principal), "caller_sees_all": principal.is_admin}
    total = session.scalar(select(func.count()).select_from(base.subquery()), params) or 0
    direction = asc if search.order == "asc" else desc
    page = session.scalars(
        base.order_by(direction(SORTABLE[search.sort_by]), direction(TrainingJob.id))
        .offset(search.offset)
        .limit(search.limit),
        params,
    ).all()
    return {
        "total": total,
        "count": len(page),
        "limit": search.limit,
        "offset": search.offset,
        "sort_by": search.sort_by,
        "order": search.order,
        "group_by": search.group_by or "",
        "workspace_id": search.workspace_id or "",
        "ai_project": "default-ai-project",
        "train_type": search.train_type or "job",
        "items": [job_to_wire(job, find_flavor(settings, job.spec["resource"]["flavor_id"]), now_ms) for job in page],
    }


# --- change ------------------------------------------------------------------------------------


def stop(
    session: Session, settings: Settings, principal: Principal, job_id: str, action: str, now_ms: int
) -> dict[str, Any]:
    if action != "terminate":
        raise errors.unsupported_action(action)
    job = get_job(session, principal, job_id, lock=True)
    if job.phase not in STOPPABLE:
        raise errors.not_allowed_to_terminate(job.phase)
    request_stop(session, job, now_ms, "Stopped by the user.")
    return job_to_wire(job, find_flavor(settings, job.spec["resource"]["flavor_id"]), now_ms)


def request_stop(session: Session, job: TrainingJob, now_ms: int, reason: str) -> None:
    """A job not yet running is Terminated at once; a running one is Terminating until its processes end."""
    job.stop_requested_at = now_ms
    job.message = reason
    if job.phase == "Running":
        job.phase = job.secondary_phase = "Terminating"
    elif job.phase in ("Creating", "Pending"):
        job.phase = job.secondary_phase = "Terminated"
        job.end_time = now_ms if job.start_time else 0
    add_event(session, job.id, now_ms, reason)


def update_description(session: Session, principal: Principal, job_id: str, description: str | None) -> None:
    job = get_job(session, principal, job_id, lock=True)
    if description is not None:
        job.description = description


def delete(session: Session, principal: Principal, job_id: str, now_ms: int) -> None:
    """Deleted at once unless its processes still run: then stopped first, and removed by the controller."""
    job = get_job(session, principal, job_id, lock=True)
    if job.phase in ("Running", "Terminating"):
        if job.phase == "Running":
            request_stop(session, job, now_ms, "Stopped because the job is being deleted.")
        job.delete_requested = True
        return
    session.delete(job)


def batch_delete(session: Session, principal: Principal, job_ids: list[str], now_ms: int) -> None:
    """All or nothing: every id must name a job the caller may see, all in one workspace."""
    jobs = [get_job(session, principal, job_id) for job_id in job_ids]
    if len({job.workspace_id for job in jobs}) > 1:
        raise errors.invalid_param("a batch delete takes jobs of one workspace.")
    for job in jobs:
        delete(session, principal, job.id, now_ms)
