"""Workflow definitions: create, find, update, delete, list, labels, overview and the to-do list."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import ColumnElement, and_, asc, desc, func, select
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.workflows import validate
from openarts.workflows.errors import invalid, not_allowed, not_found
from openarts.workflows.schemas import WorkflowIn, WorkflowUpdate
from openarts.workflows.tables import StepExecution, Workflow, WorkflowExecution
from openarts.workflows.times import rfc3339, seconds_between
from openarts.workflows.wire import workflow_to_wire
from openarts.workspaces import quotas
from openarts.workspaces import service as workspace_service
from openarts.workspaces.access import accessible_clause, accessible_params, can_access, require_workspace
from openarts.workspaces.tables import Workspace

SERVER_FIELDS = ("latest_execution", "run_count", "param_ready", "last_modified_at", "workflow_id", "created_at")


def _count(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Workflow.project_id == project_id, Workflow.workspace_id == workspace_id)
    return session.scalar(query) or 0


quotas.register_usage("workflow.num", _count)
workspace_service.resource_holders["workflows"] = _count


def get_workflow(session: Session, principal: Principal, workflow_id: str, *, lock: bool = False) -> Workflow:
    """The workflow, if the caller may see it; one of a workspace it may not use looks absent."""
    query = select(Workflow).where(Workflow.id == workflow_id, Workflow.project_id == principal.project_id)
    if lock:
        query = query.with_for_update()
    workflow = session.scalar(query)
    if workflow is None:
        raise not_found("workflow", workflow_id)
    workspace = session.get(Workspace, (workflow.project_id, workflow.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise not_found("workflow", workflow_id)
    return workflow


def latest(session: Session, workflow: Workflow) -> tuple[WorkflowExecution, list[StepExecution]] | None:
    if workflow.latest_execution_id is None:
        return None
    execution = session.get(WorkflowExecution, workflow.latest_execution_id)
    if execution is None:
        return None
    steps = session.scalars(
        select(StepExecution).where(StepExecution.execution_id == execution.id).order_by(StepExecution.position)
    ).all()
    return execution, list(steps)


def to_wire(session: Session, workflow: Workflow, now_ms: int) -> dict[str, Any]:
    return workflow_to_wire(workflow, latest(session, workflow), now_ms)


def _definition(body: dict[str, Any], previous: dict[str, Any] | None, now_ms: int) -> dict[str, Any]:
    """The stored definition: the body without server fields, each step stamped with its creation time."""
    definition = {k: v for k, v in body.items() if k not in SERVER_FIELDS}
    for key in ("steps", "data", "data_requirements", "parameters", "storages", "labels", "sub_graphs"):
        definition.setdefault(key, [])
    definition.setdefault("policy", {})
    created = {s["name"]: s.get("created_at") for s in (previous or {}).get("steps", [])}
    for step in definition["steps"]:
        step["created_at"] = created.get(step["name"]) or step.get("created_at") or rfc3339(now_ms)
        step.setdefault("title", step["name"])
        step.setdefault("description", "")
        step.setdefault("policy", {})
    validate.check(definition)
    return definition


def create(session: Session, principal: Principal, body: WorkflowIn, now_ms: int) -> dict[str, Any]:
    require_workspace(session, principal, body.workspace_id, action="modelarts:workflow:create", lock=True)
    quotas.check_quota(session, principal, body.workspace_id, "workflow.num")
    definition = _definition(body.model_dump(exclude_none=True), None, now_ms)
    workflow = Workflow(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=body.workspace_id,
        name=body.name,
        description=body.description or "",
        user_id=principal.user_id,
        user_name=principal.user_name,
        created_at=now_ms,
        last_modified_at=now_ms,
        definition=definition,
        labels=list(body.labels),
        status="",
        run_count=0,
        execution_seq=0,
    )
    session.add(workflow)
    session.flush()
    return to_wire(session, workflow, now_ms)


def update(
    session: Session, principal: Principal, workflow_id: str, body: WorkflowUpdate, now_ms: int
) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    changes = body.model_dump(exclude_none=True)
    changes.pop("smn_switch", None)  # a string in WorkflowUpdate, a bool in Workflow: notifications are not sent
    merged = {**workflow.definition, **changes}
    merged["name"] = changes.get("name", workflow.name)
    merged["description"] = changes.get("description", workflow.description)
    workflow.definition = _definition(merged, workflow.definition, now_ms)
    workflow.name = merged["name"]
    workflow.description = merged["description"] or ""
    workflow.labels = list(merged.get("labels") or [])
    workflow.last_modified_at = now_ms
    return to_wire(session, workflow, now_ms)


def delete(session: Session, principal: Principal, workflow_id: str) -> None:
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    running = session.scalar(
        select(WorkflowExecution.name).where(
            WorkflowExecution.workflow_id == workflow.id, WorkflowExecution.status.in_(("init", "running"))
        )
    )
    if running is not None:
        raise not_allowed(f"workflow {workflow_id} has a running execution ({running}): stop it first.")
    session.delete(workflow)


# --- lists -------------------------------------------------------------------------------------


class ListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: Annotated[str, Field(max_length=128)] | None = None
    description: Annotated[str, Field(max_length=1024)] | None = None
    status: Annotated[str, Field(max_length=16)] | None = None
    labels: Annotated[str, Field(max_length=1024)] | None = None
    template_id: str | None = None
    workspace_id: Annotated[str, Field(max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    sort_by: str = "create_time"
    order: str = "desc"
    search_type: str = "contain"


SORTABLE = {
    "create_time": Workflow.created_at,
    "created_at": Workflow.created_at,
    "name": Workflow.name,
    "last_modified_at": Workflow.last_modified_at,
    "run_count": Workflow.run_count,
    "user_name": Workflow.user_name,
}


def _text_filter(column: Any, value: str, search_type: str) -> ColumnElement[bool]:
    if search_type not in ("equal", "contain"):
        raise invalid("search_type must be equal or contain.")
    return column == value if search_type == "equal" else contains(column, value)


def _visible(session: Session, principal: Principal, query: ListQuery) -> Any:
    conditions: list[ColumnElement[bool]] = [Workflow.project_id == principal.project_id]
    if query.workspace_id is not None:
        require_workspace(session, principal, query.workspace_id, action="modelarts:workflow:list")
        conditions.append(Workflow.workspace_id == query.workspace_id)
    if query.name:
        conditions.append(_text_filter(Workflow.name, query.name, query.search_type))
    if query.description:
        conditions.append(_text_filter(Workflow.description, query.description, query.search_type))
    if query.status:
        conditions.append(Workflow.status == ("" if query.status == "init" else query.status))
    joined = and_(Workspace.project_id == Workflow.project_id, Workspace.id == Workflow.workspace_id)
    return select(Workflow).join(Workspace, joined).where(*conditions, accessible_clause())


def _with_labels(rows: list[Workflow], labels: str | None) -> list[Workflow]:
    wanted = [label.strip() for label in (labels or "").split(",") if label.strip()]
    return [row for row in rows if all(label in row.labels for label in wanted)]


def list_workflows(session: Session, principal: Principal, query: ListQuery, now_ms: int) -> dict[str, Any]:
    if query.sort_by not in SORTABLE:
        raise invalid(f"sort_by must be one of {', '.join(SORTABLE)}.")
    if query.order not in ("asc", "desc"):
        raise invalid("order must be asc or desc.")
    direction = asc if query.order == "asc" else desc
    statement = _visible(session, principal, query).order_by(direction(SORTABLE[query.sort_by]), Workflow.id)
    # Labels live in a JSON list: filtered here, the same on SQLite and PostgreSQL.
    rows = _with_labels(list(session.scalars(statement, accessible_params(principal))), query.labels)
    page = rows[query.offset : query.offset + query.limit]
    return {"total": len(rows), "count": len(page), "items": [to_wire(session, row, now_ms) for row in page]}


def labels(session: Session, principal: Principal, query: ListQuery) -> list[str]:
    rows = session.scalars(_visible(session, principal, query), accessible_params(principal))
    found = sorted({label for row in rows for label in row.labels})
    return found[query.offset : query.offset + query.limit] if query.limit else found


def overview(session: Session, principal: Principal, query: ListQuery) -> dict[str, Any]:
    """How many workflows there are, by the status of their latest execution ("init" if never run)."""
    stat: dict[str, int] = {}
    rows = list(session.scalars(_visible(session, principal, query), accessible_params(principal)))
    for row in rows:
        key = row.status or "init"
        stat[key] = stat.get(key, 0) + 1
    return {"total": len(rows), "stat": stat}


def todolist(session: Session, principal: Principal, query: ListQuery, now_ms: int) -> dict[str, Any]:
    """Steps waiting for a person: inputs to give (``wait_inputs``) or a hold to release."""
    workflows = {
        row.id: row for row in session.scalars(_visible(session, principal, query), accessible_params(principal))
    }
    if not workflows:
        return {"items": [], "total": 0}
    rows = session.execute(
        select(StepExecution, WorkflowExecution.id)
        .join(WorkflowExecution, WorkflowExecution.id == StepExecution.execution_id)
        .where(
            StepExecution.workflow_id.in_(list(workflows)),
            StepExecution.status.in_(("wait_inputs", "hold")),
            WorkflowExecution.status.in_(("init", "running")),
        )
        .order_by(StepExecution.updated_at.desc())
    ).all()
    items = []
    for step, execution_id in rows:
        workflow = workflows[step.workflow_id]
        definition: dict[str, Any] = next((s for s in workflow.definition["steps"] if s["name"] == step.step_name), {})
        items.append(
            {
                "time": rfc3339(step.updated_at),
                "duration": seconds_between(step.updated_at, now_ms),
                "workflow_id": workflow.id,
                "workflow_name": workflow.name,
                "execution_id": execution_id,
                "step_name": step.step_name,
                "step_title": definition.get("title") or step.step_name,
                "status": step.status,
            }
        )
    return {"items": items, "total": len(items)}
