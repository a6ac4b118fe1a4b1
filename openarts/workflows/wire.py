"""Workflows, executions and step executions as the API shows them (the SDK's response models)."""

from __future__ import annotations

from typing import Any

from openarts.workflows.tables import StepExecution, Workflow, WorkflowExecution
from openarts.workflows.times import rfc3339, seconds_between

BUSY = ("creating", "created", "running", "stopping")
ENDED = ("completed", "stopped", "abnormal")


def param_ready(definition: dict[str, Any]) -> bool:
    """Every parameter and data requirement has a value, or is ``delay`` (given at run time)."""
    parameters_ready = all(
        p.get("delay") or p.get("value") is not None or p.get("default") is not None for p in definition["parameters"]
    )
    requirements_ready = all(d.get("delay") or d.get("value") is not None for d in definition["data_requirements"])
    return parameters_ready and requirements_ready


def execution_duration(execution: WorkflowExecution, now_ms: int) -> int:
    end = execution.ended_at if execution.status in ENDED and execution.ended_at else now_ms
    return seconds_between(execution.started_at, end)


def step_duration(step: StepExecution, now_ms: int) -> int:
    end = step.ended_at or (now_ms if step.status in BUSY or step.status in ("wait_inputs", "pending") else 0)
    return seconds_between(step.started_at or step.created_at, end) if end else 0


def brief(execution: WorkflowExecution, steps: list[StepExecution], now_ms: int) -> dict[str, Any]:
    return {
        "execution_id": execution.id,
        "created_at": rfc3339(execution.created_at),
        "status": execution.status,
        "running_steps": [s.step_name for s in steps if s.status in BUSY],
        "current_steps": [s.step_name for s in steps if s.status in (*BUSY, "wait_inputs", "pending", "hold")],
        "duration": execution_duration(execution, now_ms),
    }


def workflow_to_wire(
    workflow: Workflow, latest: tuple[WorkflowExecution, list[StepExecution]] | None, now_ms: int
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **workflow.definition,
        "workflow_id": workflow.id,
        "name": workflow.name,
        "description": workflow.description,
        "workspace_id": workflow.workspace_id,
        "user_name": workflow.user_name,
        "labels": workflow.labels,
        "created_at": rfc3339(workflow.created_at),
        "last_modified_at": rfc3339(workflow.last_modified_at),
        "run_count": workflow.run_count,
        "param_ready": param_ready(workflow.definition),
    }
    if latest is not None:
        body["latest_execution"] = brief(latest[0], latest[1], now_ms)
    return body


def step_to_wire(step: StepExecution, execution: WorkflowExecution, now_ms: int) -> dict[str, Any]:
    definition: dict[str, Any] = next((s for s in execution.snapshot["steps"] if s["name"] == step.step_name), {})
    started = step.status != "init" or step.attempt > 0
    body: dict[str, Any] = {
        "step_name": step.step_name,
        "step_title": definition.get("title") or step.step_name,
        "execution_name": execution.name,
        "name": f"{execution.name}-{step.step_name}",
        "uuid": step.id,
        "execution_uuid": execution.id,
        "step_uuid": step.step_uuid,
        "created_at": rfc3339(step.created_at),
        "updated_at": rfc3339(step.updated_at),
        "duration": step_duration(step, now_ms),
        "type": step.type,
        "status": step.status,
        "inputs": step.inputs if started and step.inputs else definition.get("inputs") or [],
        "outputs": step.outputs if started and step.outputs else definition.get("outputs") or [],
        "properties": step.properties or definition.get("properties") or {},
        "events": step.events,
        "policy": {"use_cache": True} if step.used_cache else {},
    }
    if step.instance_id:
        body["instance_id"] = step.instance_id
    if step.error_info:
        body["error_info"] = step.error_info
    if step.conditions_execution:
        body["conditions_execution"] = step.conditions_execution
    conditions = step.state.get("conditions") or definition.get("conditions")
    if conditions:
        body["conditions"] = conditions
    return body


def execution_to_wire(
    execution: WorkflowExecution, steps: list[StepExecution], now_ms: int, workflow_name: str
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "created_at": rfc3339(execution.created_at),
        "name": execution.name,
        "execution_id": execution.id,
        "description": execution.description,
        "status": execution.status,
        "workspace_id": execution.workspace_id,
        "workflow_id": execution.workflow_id,
        "workflow_name": workflow_name,
        "steps_execution": [step_to_wire(step, execution, now_ms) for step in steps],
        "sub_graphs": execution.snapshot.get("sub_graphs") or [],
        "duration": execution_duration(execution, now_ms),
        "events": execution.events,
        "labels": execution.labels,
        "data_requirements": execution.data_requirements,
        "parameters": execution.parameters,
        "policies": execution.policies or {},
    }
    if execution.scene_id:
        body["scene_id"] = execution.scene_id
    if execution.scene_name:
        body["scene_name"] = execution.scene_name
    return body
