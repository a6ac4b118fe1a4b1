"""HTTP routes of workflows: ``/v2/{project_id}/workflows...`` (reference D.1)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, parse_query, route_class
from openarts.core.services import Services, services_of
from openarts.workflows import executions, service
from openarts.workflows.errors import invalid, not_found
from openarts.workflows.schemas import WorkflowIn, WorkflowUpdate

router = APIRouter(
    prefix="/v2/{project_id}/workflows",
    route_class=route_class("ModelArts.0101"),
    dependencies=[Depends(authenticate)],
    tags=["workflows"],
)

JsonBody = Body(default=None)


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


def _object(body: Any) -> dict[str, Any]:
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object.")
    return body


# --- definitions -------------------------------------------------------------------------------


@router.post("", status_code=201)
def create_workflow(request: Request, body: WorkflowIn) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        return ok(service.create(session, principal_of(request), body, _now_ms(services)), status_code=201)


@router.get("")
def list_workflows(request: Request) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, service.ListQuery)
    with services.db.read() as session:
        return ok(service.list_workflows(session, principal_of(request), query, _now_ms(services)))


@router.get("/labels")
def show_workflow_labels(request: Request) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, service.ListQuery)
    with services.db.read() as session:
        return ok(service.labels(session, principal_of(request), query.model_copy(update={"limit": 1000})))


@router.get("/overview")
def show_workflows_overview(request: Request) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, service.ListQuery)
    with services.db.read() as session:
        return ok(service.overview(session, principal_of(request), query))


@router.get("/todolist")
def show_workflows_todolist(request: Request) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, service.ListQuery)
    with services.db.read() as session:
        return ok(service.todolist(session, principal_of(request), query, _now_ms(services)))


@router.get("/{workflow_id}")
def show_workflow(request: Request, workflow_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        workflow = service.get_workflow(session, principal_of(request), workflow_id)
        workspace_id = request.query_params.get("workspace_id")
        if workspace_id is not None and workspace_id != workflow.workspace_id:
            raise not_found("workflow", workflow_id)
        return ok(service.to_wire(session, workflow, _now_ms(services)))


@router.put("/{workflow_id}")
def update_workflow(request: Request, workflow_id: str, body: WorkflowUpdate) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        return ok(service.update(session, principal_of(request), workflow_id, body, _now_ms(services)))


@router.delete("/{workflow_id}", status_code=204)
def delete_workflow(request: Request, workflow_id: str) -> Response:
    services = services_of(request)
    with services.db.write() as session:
        service.delete(session, principal_of(request), workflow_id)
    return Response(status_code=204)


# --- executions --------------------------------------------------------------------------------


@router.post("/{workflow_id}/executions", status_code=201)
def create_workflow_execution(request: Request, workflow_id: str, body: Any = JsonBody) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        created = executions.start_execution(
            session, services, workflow_id, _object(body), _now_ms(services), principal=principal_of(request)
        )
    return ok(created, status_code=201)


@router.get("/{workflow_id}/executions")
def list_workflow_executions(request: Request, workflow_id: str) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, executions.ExecutionQuery)
    with services.db.read() as session:
        return ok(executions.list_executions(session, principal_of(request), workflow_id, query, _now_ms(services)))


@router.get("/{workflow_id}/executions/labels")
def list_execution_labels(request: Request, workflow_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        return ok(executions.execution_labels(session, principal_of(request), workflow_id))


@router.get("/{workflow_id}/executions/{execution_id}")
def show_workflow_execution(request: Request, workflow_id: str, execution_id: str) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        execution = executions.get_execution(session, principal_of(request), workflow_id, execution_id)
        return ok(executions.to_wire(session, execution, _now_ms(services)))


@router.put("/{workflow_id}/executions/{execution_id}")
def update_workflow_execution(
    request: Request, workflow_id: str, execution_id: str, body: Any = JsonBody
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        return ok(
            executions.update_execution(
                session, services, principal_of(request), workflow_id, execution_id, _object(body), _now_ms(services)
            )
        )


@router.delete("/{workflow_id}/executions/{execution_id}", status_code=204)
def delete_workflow_execution(request: Request, workflow_id: str, execution_id: str) -> Response:
    services = services_of(request)
    with services.db.write() as session:
        executions.delete_execution(session, principal_of(request), workflow_id, execution_id)
    return Response(status_code=204)


@router.post("/{workflow_id}/executions/{execution_id}/actions", status_code=201)
def create_workflow_executions_actions(
    request: Request, workflow_id: str, execution_id: str, body: Any = JsonBody
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        done = executions.execution_action(
            session, services, principal_of(request), workflow_id, execution_id, _object(body), _now_ms(services)
        )
    return ok(done, status_code=201)


def _step_action(
    request: Request, workflow_id: str, execution_id: str, step_execution_id: str, body: Any
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        done = executions.step_action(
            session,
            services,
            principal_of(request),
            workflow_id,
            execution_id,
            step_execution_id,
            _object(body),
            _now_ms(services),
        )
    return ok(done, status_code=201)


@router.post("/{workflow_id}/executions/{execution_id}/step-executions/{step_execution_id}/actions", status_code=201)
def create_workflow_step_executions_actions(
    request: Request, workflow_id: str, execution_id: str, step_execution_id: str, body: Any = JsonBody
) -> JSONResponse:
    return _step_action(request, workflow_id, execution_id, step_execution_id, body)


# The seed's example spells the path with an underscore: both are accepted (reference D.1).
@router.post("/{workflow_id}/executions/{execution_id}/step_executions/{step_execution_id}/actions", status_code=201)
def create_workflow_step_executions_actions_underscore(
    request: Request, workflow_id: str, execution_id: str, step_execution_id: str, body: Any = JsonBody
) -> JSONResponse:
    return _step_action(request, workflow_id, execution_id, step_execution_id, body)


@router.get("/{workflow_id}/executions/{execution_id}/step-executions/{step_execution_id}/metrics")
def show_workflow_step_execution_metrics(
    request: Request, workflow_id: str, execution_id: str, step_execution_id: str
) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        return ok(
            executions.step_metrics(
                session, services, principal_of(request), workflow_id, execution_id, step_execution_id
            )
        )


@router.get("/{workflow_id}/step-executions")
def list_workflow_step_execution(request: Request, workflow_id: str) -> JSONResponse:
    services = services_of(request)
    query = parse_query(request, executions.StepQuery)
    with services.db.read() as session:
        return ok(
            executions.list_step_executions(session, principal_of(request), workflow_id, query, _now_ms(services))
        )
