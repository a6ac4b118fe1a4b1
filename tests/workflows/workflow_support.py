"""Building workflows for the tests: condition chains, job steps running tiny commands, waiting."""

from __future__ import annotations

import time
from typing import Any

from huaweicloudsdkmodelarts.v1 import (
    CreateWorkflowExecutionRequest,
    CreateWorkflowRequest,
    ShowWorkflowExecutionRequest,
)

FLAVOR = "modelarts.vm.cpu.2u"
ENDED = ("completed", "stopped", "abnormal")


def condition(
    name: str, left: Any, right: Any, *, op: str = "==", depend: list[str] | None = None, **more: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "type": "condition",
        "conditions": [{"type": op, "left": left, "right": right}],
        "depend_steps": depend or [],
        **more,
    }


def job_step(name: str, command: str, *, depend: list[str] | None = None, **more: Any) -> dict[str, Any]:
    return {
        "name": name,
        "type": "job",
        "properties": {
            "kind": "job",
            "metadata": {"name": name.replace(" ", "-")},
            "algorithm": {"command": command},
            "spec": {"resource": {"flavor_id": FLAVOR, "node_count": 1}},
        },
        "depend_steps": depend or [],
        **more,
    }


def create(client: Any, body: dict[str, Any]) -> Any:
    return client.create_workflow(CreateWorkflowRequest(body=body))


def run(client: Any, workflow_id: str, body: dict[str, Any] | None = None) -> Any:
    return client.create_workflow_execution(CreateWorkflowExecutionRequest(workflow_id=workflow_id, body=body or {}))


def show(client: Any, workflow_id: str, execution_id: str) -> Any:
    return client.show_workflow_execution(
        ShowWorkflowExecutionRequest(workflow_id=workflow_id, execution_id=execution_id)
    )


def statuses(execution: Any) -> dict[str, str]:
    return {step.step_name: step.status for step in execution.steps_execution or []}


def step_of(execution: Any, name: str) -> Any:
    return next(step for step in execution.steps_execution if step.step_name == name)


def wait(client: Any, workflow_id: str, execution_id: str, until: Any = None, timeout: float = 60.0) -> Any:
    """Poll until ``until(execution)`` (default: the execution ended)."""
    deadline = time.monotonic() + timeout
    check = until or (lambda e: e.status in ENDED)
    while True:
        shown = show(client, workflow_id, execution_id)
        if check(shown):
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {execution_id} is {shown.status} {statuses(shown)} after {timeout} s")
        time.sleep(0.1)
