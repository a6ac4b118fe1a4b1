"""Executions: start (by a person, a schedule, ...), show, list, update, delete, and their actions.

For the families built on top (schedules, subscriptions, service packages):

- :func:`start_execution` starts a run of a workflow without an HTTP request, by default as the
  workflow's owner; the caller's transaction commits it and the engine is woken after the commit.
- :data:`BEFORE_EXECUTION_HOOKS` may refuse a new execution by raising an ``ApiError``.
- :data:`openarts.workflows.engine.TRANSITION_HOOKS` (re-exported here) see every status change.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import asc, desc, select
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.services import Services
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from openarts.training.jobs import observe
from openarts.training.jobs.tables import TrainingJob
from openarts.workflows import engine, steps, validate
from openarts.workflows.engine import TRANSITION_HOOKS, Transition, advance, owner_of, wake_after_commit
from openarts.workflows.errors import invalid, not_allowed, not_found
from openarts.workflows.schemas import ExecutionAction, ExecutionIn, StepAction, Value
from openarts.workflows.service import get_workflow
from openarts.workflows.tables import StepExecution, Workflow, WorkflowExecution
from openarts.workflows.times import rfc3339
from openarts.workflows.wire import execution_to_wire, step_to_wire

# Called with the workflow row (locked) before an execution is created; raise an ApiError to refuse it.
# (session, workflow, now_ms): raise an ApiError to refuse; called in the transaction that would create it.
BEFORE_EXECUTION_HOOKS: list[Callable[[Session, Workflow, int], None]] = []

ENDED = ("completed", "stopped", "abnormal")
STEP_NAMESPACE = uuid.UUID("6f1d3c52-2f4e-4d8e-9a57-0c0a57f0a0e1")

__all__ = ["BEFORE_EXECUTION_HOOKS", "TRANSITION_HOOKS", "Transition", "start_execution"]


def _steps(session: Session, execution_id: str) -> list[StepExecution]:
    return list(
        session.scalars(
            select(StepExecution).where(StepExecution.execution_id == execution_id).order_by(StepExecution.position)
        )
    )


def to_wire(session: Session, execution: WorkflowExecution, now_ms: int) -> dict[str, Any]:
    workflow = session.get(Workflow, execution.workflow_id)
    name = workflow.name if workflow else execution.snapshot.get("name", "")
    return execution_to_wire(execution, _steps(session, execution.id), now_ms, name)


# --- values of a run ---------------------------------------------------------------------------


def _apply_values(
    current: list[dict[str, Any]], given: list[Value] | None, what: str, parameters: bool
) -> list[dict[str, Any]]:
    """``current`` with the values ``given`` by name; unknown names and ill-typed values are refused."""
    result = [dict(item) for item in current]
    by_name = {item["name"]: item for item in result}
    for value in given or []:
        item = by_name.get(value.name)
        if item is None:
            raise invalid(f"the workflow has no {what} {value.name}.")
        if value.value is None:
            continue
        if parameters:
            validate.check_parameter_value(item, value.value, "the value")
        elif not isinstance(value.value, dict):
            raise invalid(f'the value of {what} {value.name} must be an object (e.g. {{"obs_url": ...}}).')
        item["value"] = value.value
    return result


def _require_values(parameters: list[dict[str, Any]], requirements: list[dict[str, Any]]) -> None:
    for parameter in parameters:
        if not parameter.get("delay") and parameter.get("value") is None and parameter.get("default") is None:
            raise invalid(f"parameter {parameter['name']} needs a value.")
    for requirement in requirements:
        if not requirement.get("delay") and requirement.get("value") is None:
            raise invalid(f"data requirement {requirement['name']} needs a value.")


def _scene_steps(definition: dict[str, Any], scene_id: str | None) -> tuple[list[str], str | None, str | None]:
    """The steps one run covers: the scene's (``policy.use_scene``/``scene_id`` or the execution's
    ``scene_id``), else all."""
    policy = definition.get("policy") or {}
    names = [step["name"] for step in definition["steps"]]
    use = scene_id or (policy.get("scene_id") if str(policy.get("use_scene")).lower() in ("true", "1") else None)
    if not use:
        return names, None, None
    for scene in policy.get("scenes") or []:
        if use in (scene.get("id"), scene.get("name")):
            wanted = set(scene.get("steps") or [])
            return [name for name in names if name in wanted], scene.get("id"), scene.get("name")
    raise invalid(f"the workflow has no scene {use}.")


def _parse(model: type[BaseModel], body: Any) -> Any:
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise invalid(f"field '{where}': {first['msg']}.") from None


def start_execution(
    session: Session,
    services: Services,
    workflow_id: str,
    body: dict[str, Any],
    now_ms: int,
    *,
    trigger: str = "manual",
    principal: Principal | None = None,
) -> dict[str, Any]:
    """Create an execution of the workflow and start it; the execution as the API shows it.

    ``principal`` is the caller (its access is checked); without one the run is the workflow owner's
    (a schedule, a package...). Job steps create their jobs on behalf of that user.
    """
    request: ExecutionIn = _parse(ExecutionIn, body)
    if principal is None:
        owner = session.scalar(select(Workflow).where(Workflow.id == workflow_id).with_for_update())
        if owner is None:
            raise not_found("workflow", workflow_id)
        principal = owner_of(session, owner.user_id, owner.project_id)
        if principal is None:
            raise not_allowed(f"the owner of workflow {workflow_id} no longer exists.")
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    if request.workspace_id not in (None, workflow.workspace_id):
        raise invalid(f"workflow {workflow_id} is in workspace {workflow.workspace_id}.")
    if not workflow.definition["steps"]:
        raise invalid(f"workflow {workflow_id} has no steps to run.")
    for hook in BEFORE_EXECUTION_HOOKS:
        hook(session, workflow, now_ms)
    definition = workflow.definition
    parameters = _apply_values(definition["parameters"], request.parameters, "parameter", True)
    requirements = _apply_values(definition["data_requirements"], request.data_requirements, "data requirement", False)
    _require_values(parameters, requirements)
    names, scene_id, scene_name = _scene_steps(definition, request.scene_id)
    workflow.execution_seq += 1
    workflow.run_count += 1
    execution = WorkflowExecution(
        id=ids.uuid4(),
        workflow_id=workflow.id,
        project_id=workflow.project_id,
        workspace_id=workflow.workspace_id,
        name=request.name or f"execution-{workflow.execution_seq:03d}",
        description=request.description or "",
        labels=list(request.labels or []),
        user_id=principal.user_id,
        trigger=trigger,
        status="init",
        created_at=now_ms,
        snapshot=definition,
        parameters=parameters,
        data_requirements=requirements,
        policies=request.policies.model_dump(exclude_none=True) if request.policies else {},
        scene_id=scene_id or request.scene_id,
        scene_name=scene_name or request.scene_name,
        events=[],
    )
    session.add(execution)
    session.flush()  # no ORM relationship orders the inserts: the steps refer to this row
    types = {step["name"]: step["type"] for step in definition["steps"]}
    for position, name in enumerate(names):
        session.add(
            StepExecution(
                id=ids.uuid4(),
                execution_id=execution.id,
                workflow_id=workflow.id,
                position=position,
                step_name=name,
                step_uuid=str(uuid.uuid5(STEP_NAMESPACE, f"{workflow.id}/{name}")),
                type=types[name],
                status="init",
                created_at=now_ms,
                updated_at=now_ms,
            )
        )
    workflow.latest_execution_id = execution.id
    workflow.status = "init"
    session.flush()
    advance(session, services, execution.id, now_ms)
    wake_after_commit(session)
    return to_wire(session, execution, now_ms)


# --- find, list, change ------------------------------------------------------------------------


def get_execution(
    session: Session, principal: Principal, workflow_id: str, execution_id: str, *, lock: bool = False
) -> WorkflowExecution:
    get_workflow(session, principal, workflow_id)
    query = select(WorkflowExecution).where(
        WorkflowExecution.id == execution_id, WorkflowExecution.workflow_id == workflow_id
    )
    if lock:
        query = query.with_for_update()
    execution = session.scalar(query)
    if execution is None:
        raise not_found("execution", execution_id)
    return execution


class ExecutionQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    workspace_id: Annotated[str, Field(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    sort_by: str = "created_at"
    order: str = "desc"
    labels: Annotated[str, Field(max_length=1024)] | None = None
    status: Annotated[str, Field(max_length=16)] | None = None
    scene_id: Annotated[str, Field(max_length=64)] | None = None


EXECUTION_SORT = {
    "created_at": WorkflowExecution.created_at,
    "create_time": WorkflowExecution.created_at,
    "name": WorkflowExecution.name,
    "status": WorkflowExecution.status,
}


def list_executions(
    session: Session, principal: Principal, workflow_id: str, query: ExecutionQuery, now_ms: int
) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id)
    if query.sort_by not in EXECUTION_SORT:
        raise invalid(f"sort_by must be one of {', '.join(EXECUTION_SORT)}.")
    if query.order not in ("asc", "desc"):
        raise invalid("order must be asc or desc.")
    if query.workspace_id is not None and query.workspace_id != workflow.workspace_id:
        return {"total": 0, "count": 0, "items": []}
    conditions = [WorkflowExecution.workflow_id == workflow.id]
    if query.status:
        conditions.append(WorkflowExecution.status == query.status)
    if query.scene_id:
        conditions.append(WorkflowExecution.scene_id == query.scene_id)
    direction = asc if query.order == "asc" else desc
    rows = list(
        session.scalars(
            select(WorkflowExecution)
            .where(*conditions)
            .order_by(direction(EXECUTION_SORT[query.sort_by]), direction(WorkflowExecution.id))
        )
    )
    wanted = [label.strip() for label in (query.labels or "").split(",") if label.strip()]
    rows = [row for row in rows if all(label in row.labels for label in wanted)]
    page = rows[query.offset : query.offset + query.limit]
    return {"total": len(rows), "count": len(page), "items": [to_wire(session, row, now_ms) for row in page]}


def execution_labels(session: Session, principal: Principal, workflow_id: str) -> list[str]:
    workflow = get_workflow(session, principal, workflow_id)
    rows = session.scalars(select(WorkflowExecution.labels).where(WorkflowExecution.workflow_id == workflow.id))
    return sorted({label for labels in rows for label in labels})


def update_execution(
    session: Session,
    services: Services,
    principal: Principal,
    workflow_id: str,
    execution_id: str,
    body: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    """Description, labels, and values for the run's parameters and data requirements (a step waiting
    for them goes on)."""
    request: ExecutionIn = _parse(ExecutionIn, body)
    execution = get_execution(session, principal, workflow_id, execution_id, lock=True)
    if request.description is not None:
        execution.description = request.description
    if request.labels is not None:
        execution.labels = list(request.labels)
    if request.parameters or request.data_requirements:
        if execution.status in ENDED:
            raise not_allowed(f"execution {execution.name} has ended: rerun it to use new values.")
        execution.parameters = _apply_values(execution.parameters, request.parameters, "parameter", True)
        execution.data_requirements = _apply_values(
            execution.data_requirements, request.data_requirements, "data requirement", False
        )
        advance(session, services, execution.id, now_ms)
        wake_after_commit(session)
    return to_wire(session, execution, now_ms)


def delete_execution(session: Session, principal: Principal, workflow_id: str, execution_id: str) -> None:
    execution = get_execution(session, principal, workflow_id, execution_id, lock=True)
    if execution.status in engine.RUNNING_EXECUTION:
        raise not_allowed(f"execution {execution.name} is {execution.status}: stop it before deleting it.")
    workflow = session.get_one(Workflow, workflow_id)
    session.delete(execution)
    session.flush()
    if workflow.latest_execution_id == execution_id:
        newest = session.scalar(
            select(WorkflowExecution)
            .where(WorkflowExecution.workflow_id == workflow_id)
            .order_by(WorkflowExecution.created_at.desc())
            .limit(1)
        )
        workflow.latest_execution_id = newest.id if newest else None
        workflow.status = newest.status if newest else ""


# --- actions -----------------------------------------------------------------------------------


def _reset(step: StepExecution, run: engine.Pass) -> None:
    """Back to ``init`` for another attempt; its history (events) stays."""
    run.move(step, "init")
    step.attempt += 1
    step.started_at = step.ended_at = 0
    step.inputs, step.outputs, step.properties = [], [], {}
    step.state, step.rules_out = {}, []
    step.error_info = step.conditions_execution = None
    step.instance_id = step.cache_key = step.deadline = None
    step.used_cache = False


def _reopen(session: Session, execution: WorkflowExecution, now_ms: int) -> None:
    execution.stop_requested = False
    execution.ended_at = 0
    engine.set_execution_status(session, execution, "running", now_ms)


def execution_action(
    session: Session,
    services: Services,
    principal: Principal,
    workflow_id: str,
    execution_id: str,
    body: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    action: ExecutionAction = _parse(ExecutionAction, body)
    execution = get_execution(session, principal, workflow_id, execution_id, lock=True)
    accepted = ["stop"] if execution.status in engine.RUNNING_EXECUTION else ["rerun"]
    if action.action_name not in accepted:
        raise invalid(
            f"execution {execution.name} is {execution.status}: it accepts {' or '.join(accepted)}, "
            f"not {action.action_name!r}."
        )
    if action.action_name == "stop":
        execution.stop_requested = True
    else:
        execution.parameters = _apply_values(execution.parameters, action.parameters, "parameter", True)
        execution.data_requirements = _apply_values(
            execution.data_requirements, action.data_requirements, "data requirement", False
        )
        run = engine.Pass(session, services, execution, now_ms)
        chosen = (action.policies.rerun_steps if action.policies else None) or []
        for name in chosen:
            if name not in run.steps:
                raise invalid(f"policies.rerun_steps names {name!r}, which is not a step of this execution.")
        again = (set(chosen) | validate.descendants(run.upstream, chosen)) if chosen else set(run.steps)
        _reopen(session, execution, now_ms)
        for name in run.order:
            if name in again:
                _reset(run.steps[name], run)
    advance(session, services, execution.id, now_ms)
    wake_after_commit(session)
    return to_wire(session, execution, now_ms)


def accepted_step_actions(status: str) -> list[str]:
    if status in ("wait_inputs", "hold"):
        return ["continue", "stop"]
    if status in ("pending", "creating", "created", "running"):
        return ["stop"]
    if status in ("failed", "create_failed", "stopped", "timeout"):
        return ["retry"]
    return []


def step_action(
    session: Session,
    services: Services,
    principal: Principal,
    workflow_id: str,
    execution_id: str,
    step_execution_id: str,
    body: dict[str, Any],
    now_ms: int,
) -> dict[str, Any]:
    action: StepAction = _parse(StepAction, body)
    execution = get_execution(session, principal, workflow_id, execution_id, lock=True)
    run = engine.Pass(session, services, execution, now_ms)
    step = next((s for s in run.steps.values() if s.id == step_execution_id), None)
    if step is None:
        raise not_found("step execution", step_execution_id)
    accepted = accepted_step_actions(step.status)
    if action.action_name not in accepted:
        offer = " or ".join(accepted) if accepted else "no action"
        raise invalid(f"step {step.step_name} is {step.status}: it accepts {offer} now, not {action.action_name!r}.")
    if action.action_name == "stop":
        kind = steps.get(step.type)
        if step.status in ("creating", "created", "running") and kind is not None:
            run.move(step, kind.stop(run.context(step)))
        else:
            run.move(step, "stopped")
    elif action.action_name == "retry":
        again = {step.step_name} | validate.descendants(run.upstream, [step.step_name])
        if execution.status in ENDED:
            _reopen(session, execution, now_ms)
        for name in run.order:
            other = run.steps[name]
            if name in again and (
                name == step.step_name or other.status in ("stopped", "failed", "timeout", "create_failed")
            ):
                _reset(other, run)
    else:  # continue
        execution.parameters = _apply_values(execution.parameters, action.parameters, "parameter", True)
        execution.data_requirements = _apply_values(
            execution.data_requirements, action.data_requirements, "data requirement", False
        )
        run = engine.Pass(session, services, execution, now_ms)
        step = run.steps[step.step_name]
        missing = run.missing(run.definitions[step.step_name])
        if missing:
            raise invalid(f"step {step.step_name} still needs {', '.join(ref.text for ref in missing)}.")
        run.move(step, "pending")
    if execution.status in engine.RUNNING_EXECUTION:
        advance(session, services, execution.id, now_ms)
    wake_after_commit(session)
    session.flush()
    session.refresh(step)
    return step_to_wire(step, execution, now_ms)


# --- step executions ---------------------------------------------------------------------------


class StepQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    sort_by: str = "created_at"
    order: str = "desc"


def list_step_executions(
    session: Session, principal: Principal, workflow_id: str, query: StepQuery, now_ms: int
) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id)
    sortable = {
        "created_at": StepExecution.created_at,
        "step_name": StepExecution.step_name,
        "status": StepExecution.status,
    }
    if query.sort_by not in sortable or query.order not in ("asc", "desc"):
        raise invalid(f"sort_by must be one of {', '.join(sortable)}; order asc or desc.")
    direction = asc if query.order == "asc" else desc
    rows = session.execute(
        select(StepExecution, WorkflowExecution)
        .join(WorkflowExecution, WorkflowExecution.id == StepExecution.execution_id)
        .where(StepExecution.workflow_id == workflow.id)
        .order_by(direction(sortable[query.sort_by]), StepExecution.position)
    ).all()
    page = rows[query.offset : query.offset + query.limit]
    metrics: list[str] = []
    for step, _ in page:
        for pair in (step.conditions_execution or {}).get("metric_list") or []:
            if pair.get("key") not in metrics:
                metrics.append(pair["key"])
    return {
        "total": len(rows),
        "count": len(page),
        "items": [step_to_wire(step, execution, now_ms) for step, execution in page],
        "default_order": query.order,
        "compare_columns": {"parameters": [p["name"] for p in workflow.definition["parameters"]], "metrics": metrics},
    }


def step_metrics(
    session: Session,
    services: Services,
    principal: Principal,
    workflow_id: str,
    execution_id: str,
    step_execution_id: str,
) -> list[dict[str, Any]]:
    """The job's metrics: what it wrote to ``metrics.json`` in an output, and its CPU and memory use."""
    get_execution(session, principal, workflow_id, execution_id)
    step = session.scalar(
        select(StepExecution).where(StepExecution.id == step_execution_id, StepExecution.execution_id == execution_id)
    )
    if step is None:
        raise not_found("step execution", step_execution_id)
    created = rfc3339(step.ended_at or step.updated_at)
    found: list[dict[str, Any]] = []
    for pair in (step.conditions_execution or {}).get("metric_list") or []:
        found.append(
            {
                "created_at": created,
                "key": pair["key"],
                "title": pair["key"],
                "type": "scalar",
                "data": {"value": pair["value"]},
            }
        )
    job_id = step.state.get("job_id")
    if not job_id:
        return found
    store = ObjectStore(services.settings)
    for output in step.outputs:
        url = (output.get("config") or {}).get("obs_url")
        if output.get("type") != "obs" or not isinstance(url, str) or not url.endswith("/"):
            continue
        try:
            document = json.loads(store.read_bytes(parse_obs_url(url + "metrics.json")))
        except Exception:  # noqa: S112 - no metrics file, or not JSON: the output simply has no metrics
            continue
        if isinstance(document, dict):
            for key, value in document.items():
                kind = "scalar" if isinstance(value, (int, float)) else "data"
                found.append({"created_at": created, "key": key, "title": key, "type": kind, "data": {"value": value}})
    job = session.get(TrainingJob, job_id)
    if job is not None:
        for series in observe.metrics(session, job)["metrics"]:
            found.append(
                {
                    "created_at": created,
                    "key": series["metric"],
                    "title": series["metric"],
                    "type": "line",
                    "data": {"values": series["value"]},
                }
            )
    return found
