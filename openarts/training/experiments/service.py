"""Training experiment rules, and what training jobs need from experiments.

An experiment is a named folder for jobs, kept per workspace. Jobs point at one by id or name
(:func:`resolve_experiment`), are numbered within it (:func:`next_serial_number`) and report the
reference :func:`experiment_reference` gives. How many jobs an experiment holds is counted by the jobs
code, which registers its counter in :data:`job_counters`; this module knows nothing about jobs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import Select, and_, asc, desc, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.training.errors import invalid_param as invalid_param  # re-exported: callers use it from here
from openarts.training.errors import training_error
from openarts.training.experiments import schemas
from openarts.training.experiments.tables import Experiment
from openarts.workspaces.access import accessible_clause, accessible_params, require_workspace
from openarts.workspaces.service import resource_holders
from openarts.workspaces.tables import Workspace

SORT_COLUMNS = {"create_time": Experiment.create_time, "update_time": Experiment.update_time, "name": Experiment.name}

# (session, experiment id) -> how many jobs are filed under it. The jobs code appends its counter.
JobCounter = Callable[[Session, str], int]
job_counters: list[JobCounter] = []


# --- errors (training v2 errors carry an error_solution) -------------------------------------


def experiment_not_found(reference: str) -> ApiError:
    """ModelArts documents no code for this; InvalidParam with a message that says what is missing."""
    return training_error(
        "2788",
        "InvalidParam",
        f"training experiment {reference} does not exist.",
        "Check the experiment id or name: list them with GET /v2/{project_id}/training-experiments.",
    )


def duplicate_name(name: str, workspace_id: str) -> ApiError:
    return training_error(
        "2751",
        "DuplicateTrainingExperimentName",
        f"a training experiment named {name} already exists in workspace {workspace_id}.",
        "Use another name; GET /v2/{project_id}/training-experiment-names tells whether a name is taken.",
    )


# --- what training jobs use --------------------------------------------------------------------


def job_count(session: Session, experiment_id: str) -> int:
    return sum(counter(session, experiment_id) for counter in job_counters)


def resolve_experiment(
    session: Session, principal: Principal, workspace_id: str, *, experiment_id: str | None, name: str | None
) -> Experiment:
    """The experiment a job in ``workspace_id`` names by id (which wins) or by name.

    The caller has already checked the workspace; an experiment of another workspace or project is
    as unknown as a missing one (400 ModelArts.2788).
    """
    query = select(Experiment).where(
        Experiment.project_id == principal.project_id, Experiment.workspace_id == workspace_id
    )
    if experiment_id is not None:
        experiment = session.scalar(query.where(Experiment.id == experiment_id))
        if experiment is None:
            raise experiment_not_found(experiment_id)
        if name is not None and name != experiment.name:
            raise invalid_param(f"training experiment {experiment_id} is named {experiment.name}, not {name}.")
        return experiment
    if name is None:
        raise invalid_param("training_experiment_reference needs an id or a name.")
    experiment = session.scalar(query.where(Experiment.name == name))
    if experiment is None:
        raise experiment_not_found(name)
    return experiment


def next_serial_number(session: Session, experiment: Experiment) -> str:
    """The next job's number in the experiment ("1", "2", ...), for ``serial_number``.

    Call it in the write transaction that creates the job, so numbers are never handed out twice.
    """
    experiment.last_serial_number += 1
    session.flush()
    return str(experiment.last_serial_number)


def experiment_reference(experiment: Experiment, serial_number: str | None = None) -> dict[str, Any]:
    """A job's ``metadata.training_experiment_reference`` (TrainingExperimentResp)."""
    reference: dict[str, Any] = {"id": experiment.id, "name": experiment.name}
    if serial_number is not None:
        reference["serial_number"] = serial_number
    return reference


def _count_in_workspace(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Experiment.project_id == project_id, Experiment.workspace_id == workspace_id)
    return session.scalar(query) or 0


resource_holders["training experiments"] = _count_in_workspace


# --- the experiment endpoints ------------------------------------------------------------------


def to_wire(session: Session, experiment: Experiment) -> dict[str, Any]:
    return {
        "metadata": {
            "id": experiment.id,
            "name": experiment.name,
            "description": experiment.description,
            "workspace_id": experiment.workspace_id,
            "create_time": experiment.create_time,
            "update_time": experiment.update_time,
        },
        "statistic": {"job_count": job_count(session, experiment.id)},
    }


def _name_taken(session: Session, project_id: str, workspace_id: str, name: str) -> str | None:
    """The id of the experiment that holds the name in the workspace, if any."""
    return session.scalar(
        select(Experiment.id).where(
            Experiment.project_id == project_id, Experiment.workspace_id == workspace_id, Experiment.name == name
        )
    )


def _flush_or_duplicate(session: Session, experiment: Experiment) -> None:
    try:
        session.flush()
    except IntegrityError:  # a concurrent write took the name between the check and this one
        raise duplicate_name(experiment.name, experiment.workspace_id) from None


def create(session: Session, principal: Principal, body: schemas.CreateExperiment, now_ms: int) -> dict[str, Any]:
    metadata = body.metadata
    require_workspace(session, principal, metadata.workspace_id, action="modelarts:trainExperiment:create")
    if _name_taken(session, principal.project_id, metadata.workspace_id, metadata.name) is not None:
        raise duplicate_name(metadata.name, metadata.workspace_id)
    experiment = Experiment(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=metadata.workspace_id,
        name=metadata.name,
        description=metadata.description,
        user_id=principal.user_id,
        user_name=principal.user_name,
        create_time=now_ms,
        update_time=now_ms,
        last_serial_number=0,
    )
    session.add(experiment)
    _flush_or_duplicate(session, experiment)
    return to_wire(session, experiment)


def check_name(session: Session, principal: Principal, query: schemas.NameQuery) -> dict[str, Any]:
    require_workspace(session, principal, query.workspace_id, action="modelarts:trainExperiment:get")
    taken = _name_taken(session, principal.project_id, query.workspace_id, query.experiment_name)
    return {"is_duplicate": taken is not None}


def _require(session: Session, principal: Principal, experiment_id: str, action: str) -> Experiment:
    """The experiment for an experiment route: 400 if unknown (also in other projects), 403 if the
    caller may not work in its workspace."""
    experiment = session.scalar(
        select(Experiment).where(Experiment.project_id == principal.project_id, Experiment.id == experiment_id)
    )
    if experiment is None:
        raise experiment_not_found(experiment_id)
    require_workspace(session, principal, experiment.workspace_id, action=action)
    return experiment


def show(session: Session, principal: Principal, experiment_id: str) -> dict[str, Any]:
    return to_wire(session, _require(session, principal, experiment_id, "modelarts:trainExperiment:get"))


def change(
    session: Session, principal: Principal, experiment_id: str, body: schemas.ChangeExperiment, now_ms: int
) -> dict[str, Any]:
    """Rename and re-describe; the answer is the new ``{name, description}``."""
    experiment = _require(session, principal, experiment_id, "modelarts:trainExperiment:update")
    if body.name is not None and body.name != experiment.name:
        clash = _name_taken(session, principal.project_id, experiment.workspace_id, body.name)
        if clash is not None:
            raise duplicate_name(body.name, experiment.workspace_id)
        experiment.name = body.name
    if body.description is not None:
        experiment.description = body.description
    experiment.update_time = now_ms
    _flush_or_duplicate(session, experiment)
    return {"name": experiment.name, "description": experiment.description}


def delete(session: Session, principal: Principal, experiment_id: str) -> None:
    """Jobs filed under the experiment keep running and keep the reference they recorded."""
    experiment = _require(session, principal, experiment_id, "modelarts:trainExperiment:delete")
    session.delete(experiment)
    session.flush()


def _scope(session: Session, principal: Principal, workspace_id: str | None) -> Select[Any]:
    """The experiments the caller may list: one workspace it may use, or every workspace it may use."""
    query = select(Experiment).where(Experiment.project_id == principal.project_id)
    if workspace_id is not None:
        require_workspace(session, principal, workspace_id, action="modelarts:trainExperiment:list")
        return query.where(Experiment.workspace_id == workspace_id)
    joined = and_(Workspace.project_id == Experiment.project_id, Workspace.id == Experiment.workspace_id)
    return query.join(Workspace, joined).where(accessible_clause())


def list_experiments(session: Session, principal: Principal, query: schemas.ListQuery) -> dict[str, Any]:
    column = SORT_COLUMNS.get(query.sort_by)
    if column is None:
        raise training_error(
            "2790", "UnsupportedSortBy", f"cannot sort by {query.sort_by}.", "Sort by create_time, update_time or name."
        )
    scope = _scope(session, principal, query.workspace_id)
    params = accessible_params(principal)
    total = session.scalar(select(func.count()).select_from(scope.subquery()), params) or 0
    direction = asc if query.order == "asc" else desc
    page = scope.order_by(direction(column), direction(Experiment.id)).limit(query.limit).offset(query.offset)
    experiments = session.scalars(page, params).all()
    return {
        "total": total,
        "count": total,
        "limit": query.limit,
        "offset": query.offset,
        "sort_by": query.sort_by,
        "order": query.order,
        "items": [to_wire(session, experiment) for experiment in experiments],
    }
