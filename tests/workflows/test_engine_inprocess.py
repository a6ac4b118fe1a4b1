"""The engine in this process, with a clock the test moves: timeouts, the hooks, starting an execution
without a request, and the controller's pass after a restart."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from openarts.core.clock import to_ms
from openarts.core.errors import ApiError
from openarts.core.services import Services
from openarts.workflows import engine, executions
from openarts.workflows.controller import WorkflowController
from openarts.workflows.tables import Workflow
from tests.conftest import InProcess
from tests.workflows.workflow_support import condition, job_step


def _services(inprocess: InProcess) -> Services:
    services: Services = inprocess.app.state.services
    return services


def _create(inprocess: InProcess, body: dict[str, Any]) -> dict[str, Any]:
    response = inprocess.signed("POST", f"/v2/{inprocess.admin['project_id']}/workflows", body=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_chain_of_conditions_runs_in_the_creating_request(inprocess: InProcess) -> None:
    steps = [condition("c0", 1, 1)] + [condition(f"c{i}", i, i, depend=[f"c{i - 1}"]) for i in range(1, 20)]
    workflow = _create(inprocess, {"name": "chain", "steps": steps})
    response = inprocess.signed(
        "POST", f"/v2/{inprocess.admin['project_id']}/workflows/{workflow['workflow_id']}/executions", body={}
    )
    assert response.status_code == 201, response.text
    execution = response.json()
    assert execution["status"] == "completed"
    assert execution["name"] == "execution-001"
    assert {s["status"] for s in execution["steps_execution"]} == {"completed"}
    first = execution["steps_execution"][0]
    assert first["events"][0].endswith("change status from init to running")
    assert first["conditions_execution"]["result"] == "true"


def test_start_execution_hooks_and_timeouts(inprocess: InProcess) -> None:
    workflow = _create(
        inprocess,
        {
            "name": "timeouts",
            "steps": [
                job_step("slow", "python -c pass", policy={"max_execution_minutes": "1"}),
                condition("after", 1, 1, depend=["slow"]),
            ],
        },
    )
    services = _services(inprocess)
    seen: list[engine.Transition] = []
    refused: list[str] = []

    def record(_session: Session, transition: engine.Transition) -> None:
        seen.append(transition)

    def refuse(_session: Session, row: Workflow, _now_ms: int) -> None:
        refused.append(row.id)
        if len(refused) == 1:
            raise ApiError(400, "ModelArts.0104", "no more runs")

    engine.TRANSITION_HOOKS.append(record)
    executions.BEFORE_EXECUTION_HOOKS.append(refuse)
    try:
        now_ms = to_ms(inprocess.clock.now())
        with services.db.write() as session:
            try:
                executions.start_execution(session, services, workflow["workflow_id"], {}, now_ms, trigger="schedule")
            except ApiError as exc:
                assert exc.message == "no more runs"
            else:
                raise AssertionError("the hook did not refuse")
        with services.db.write() as session:
            started = executions.start_execution(session, services, workflow["workflow_id"], {}, now_ms)
        # No training controller runs here: the job stays queued, and the step times out.
        assert {s["step_name"]: s["status"] for s in started["steps_execution"]} == {"slow": "created", "after": "init"}
        controller = WorkflowController(services)
        assert controller.reconcile() is not None  # the job step is watched
        inprocess.clock.advance(61)
        controller.reconcile()
        shown = inprocess.signed(
            "GET",
            f"/v2/{inprocess.admin['project_id']}/workflows/{workflow['workflow_id']}/executions/{started['execution_id']}",
        ).json()
        assert shown["status"] == "abnormal"
        slow = shown["steps_execution"][0]
        assert slow["status"] == "timeout"
        assert "max_execution_minutes" in slow["error_info"]["error_message"]
        assert shown["steps_execution"][1]["status"] == "init"
        assert controller.reconcile() is None  # nothing left to watch: sleep until woken
    finally:
        engine.TRANSITION_HOOKS.remove(record)
        executions.BEFORE_EXECUTION_HOOKS.remove(refuse)
    changes = [(t.step_name, t.old, t.new) for t in seen]
    assert (None, "init", "running") in changes
    assert ("slow", "created", "timeout") in changes
    assert (None, "running", "abnormal") in changes
