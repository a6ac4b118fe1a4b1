"""Executions through the official SDK with real training jobs: the seed's graph both ways, inputs on
demand, stop, retry, rerun of chosen steps, cache reuse, and the execution endpoints around them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    Algorithm,
    AlgorithmCreateEngine,
    AlgorithmJobConfig,
    AlgorithmMetadata,
    CreateAlgorithmRequest,
    CreateWorkflowExecutionsActionsRequest,
    CreateWorkflowStepExecutionsActionsRequest,
    DeleteWorkflowExecutionRequest,
    ListExecutionLabelsRequest,
    ListWorkflowExecutionsRequest,
    ListWorkflowStepExecutionRequest,
    ShowTrainingJobDetailsRequest,
    ShowWorkflowRequest,
    ShowWorkflowStepExecutionMetricsRequest,
    ShowWorkflowsTodolistRequest,
    UpdateWorkflowExecutionRequest,
)

from openarts.compute.engines import default_engine
from openarts.config import Settings
from tests.support.server import LiveServer
from tests.training.jobs_support import put
from tests.workflows.test_definitions_sdk import seed_graph
from tests.workflows.workflow_support import (
    FLAVOR,
    condition,
    create,
    job_step,
    run,
    statuses,
    step_of,
    wait,
)

Unique = Callable[[str], str]
ENGINE = default_engine(Settings.from_env({}))


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _action(client: Any, workflow_id: str, execution_id: str, body: dict[str, Any]) -> Any:
    return client.create_workflow_executions_actions(
        CreateWorkflowExecutionsActionsRequest(workflow_id=workflow_id, execution_id=execution_id, body=body)
    )


def _step_action(client: Any, workflow_id: str, execution_id: str, step_id: str, body: dict[str, Any]) -> Any:
    return client.create_workflow_step_executions_actions(
        CreateWorkflowStepExecutionsActionsRequest(
            workflow_id=workflow_id, execution_id=execution_id, step_execution_id=step_id, body=body
        )
    )


def _job_id(step: Any) -> str:
    job_id: str = json.loads(step.instance_id)["job_id"]
    return job_id


@pytest.mark.sdk_on_ray
def test_the_seed_graph_runs_real_jobs_both_ways(admin_client: Any, server: LiveServer, unique: Unique) -> None:
    put(server, "/test-lh/test-metrics/metrics.json", '{"accuracy": 0.9}')
    algorithm = admin_client.create_algorithm(
        CreateAlgorithmRequest(
            body=Algorithm(
                metadata=AlgorithmMetadata(name=unique("wf-algo")),
                job_config=AlgorithmJobConfig(
                    command="python -c pass",
                    engine=AlgorithmCreateEngine(engine_name=ENGINE.engine_name, engine_version=ENGINE.engine_version),
                ),
            )
        )
    )
    workflow = create(admin_client, seed_graph(unique("graph"), algorithm.metadata.id))
    wid = workflow.workflow_id
    flavor = {"name": "train_spec", "value": FLAVOR}

    first = run(admin_client, wid, {"parameters": [flavor]})
    assert first.name == "execution-001" and first.created_at[10] == "T"
    done = wait(admin_client, wid, first.execution_id)
    assert done.status == "completed", [(s.step_name, s.error_info) for s in done.steps_execution]
    assert statuses(done) == {
        "condition_step_test": "completed",
        "training_job1": "completed",
        "training_job2": "skipped",
        "training_job3": "completed",
    }
    condition_step = step_of(done, "condition_step_test")
    assert condition_step.conditions_execution.result == "true"
    job1 = step_of(done, "training_job1")
    assert job1.inputs[0].value == {"obs_url": "/test-lh/test-metrics/"}
    assert job1.events[0].endswith("change status from init to creating")
    assert [e.split(" ", 2)[2] for e in job1.events][-1] == "change status from running to completed"
    shown_job = admin_client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=_job_id(job1)))
    assert shown_job.status.phase == "Completed"
    assert shown_job.spec.resource.flavor_id == FLAVOR
    assert any(e.endswith("step training_job2 change status from init to skipped") for e in done.events)

    second = run(admin_client, wid, {"parameters": [flavor, {"name": "is_true", "value": False}]})
    assert second.name == "execution-002"
    done = wait(admin_client, wid, second.execution_id)
    assert statuses(done) == {
        "condition_step_test": "completed",
        "training_job1": "skipped",
        "training_job2": "completed",
        "training_job3": "completed",
    }
    shown = admin_client.show_workflow(ShowWorkflowRequest(workflow_id=wid))
    assert shown.run_count == 2
    assert (shown.latest_execution.execution_id, shown.latest_execution.status) == (second.execution_id, "completed")
    listed = admin_client.list_workflow_step_execution(ListWorkflowStepExecutionRequest(workflow_id=wid, limit=50))
    assert listed.total == 8 and "is_true" in listed.compare_columns.parameters
    metrics = admin_client.show_workflow_step_execution_metrics(
        ShowWorkflowStepExecutionMetricsRequest(
            workflow_id=wid, execution_id=second.execution_id, step_execution_id=step_of(done, "training_job2").uuid
        )
    )
    assert {"accuracy", "cpuUsage"} <= {m.key for m in metrics.body}


def test_inputs_on_demand_continue_and_update(admin_client: Any, raw: Any, unique: Unique) -> None:
    workflow = create(
        admin_client,
        {
            "name": unique("ask"),
            "parameters": [
                {"name": "threshold", "type": "int", "delay": True},
                {"name": "second", "type": "str", "delay": True, "enum": ["go", "stay"]},
            ],
            "steps": [
                condition("ask", "$ref/parameters/threshold", 5, op=">"),
                condition("later", "$ref/parameters/second", ["go"], op="in", depend=["ask"]),
            ],
        },
    )
    wid = workflow.workflow_id
    execution = run(admin_client, wid, {"labels": ["l1"]})
    assert statuses(execution) == {"ask": "wait_inputs", "later": "init"}
    todo = admin_client.show_workflows_todolist(ShowWorkflowsTodolistRequest())
    assert (wid, "ask", "wait_inputs") in {(t.workflow_id, t.step_name, t.status) for t in todo.items}
    ask = step_of(execution, "ask")
    eid = execution.execution_id
    error = _error(lambda: _step_action(admin_client, wid, eid, ask.uuid, {"action_name": "retry"}))
    assert error.status_code == 400 and "accepts continue or stop" in error.error_msg
    error = _error(lambda: _step_action(admin_client, wid, eid, ask.uuid, {"action_name": "continue"}))
    assert "$ref/parameters/threshold" in error.error_msg
    error = _error(
        lambda: _step_action(
            admin_client,
            wid,
            eid,
            ask.uuid,
            {"action_name": "continue", "parameters": [{"name": "threshold", "value": "7"}]},
        )
    )
    assert "must be a int" in error.error_msg
    continued = _step_action(
        admin_client, wid, eid, ask.uuid, {"action_name": "continue", "parameters": [{"name": "threshold", "value": 7}]}
    )
    assert continued.status == "completed" and continued.conditions_execution.result == "true"
    assert [e.split(" ", 2)[2] for e in continued.events][:3] == [
        "change status from init to wait_inputs",
        "change status from wait_inputs to pending",
        "change status from pending to running",
    ]
    shown = wait(admin_client, wid, eid, until=lambda e: statuses(e)["later"] == "wait_inputs")
    updated = admin_client.update_workflow_execution(
        UpdateWorkflowExecutionRequest(
            workflow_id=wid,
            execution_id=eid,
            body={"parameters": [{"name": "second", "value": "go"}], "description": "d"},
        )
    )
    assert updated.status == "completed" and updated.description == "d", statuses(shown)
    assert admin_client.list_execution_labels(ListExecutionLabelsRequest(workflow_id=wid)).body == ["l1"]
    listed = admin_client.list_workflow_executions(ListWorkflowExecutionsRequest(workflow_id=wid, status="completed"))
    assert [e.execution_id for e in listed.items] == [eid]
    error = _error(lambda: _action(admin_client, wid, eid, {"action_name": "resume"}))
    assert "accepts rerun" in error.error_msg
    # The seed's spelling of the step action path (step_executions) works too.
    response = raw(
        "POST",
        f"/v2/{{project_id}}/workflows/{wid}/executions/{eid}/step_executions/{ask.uuid}/actions",
        {"action_name": "stop"},
    )
    assert response.status_code == 400 and "accepts retry" not in response.json()["error_msg"]
    admin_client.delete_workflow_execution(DeleteWorkflowExecutionRequest(workflow_id=wid, execution_id=eid))
    assert admin_client.list_workflow_executions(ListWorkflowExecutionsRequest(workflow_id=wid)).total == 0


@pytest.mark.sdk_on_ray
def test_stop_a_running_execution(admin_client: Any, unique: Unique) -> None:
    workflow = create(
        admin_client,
        {
            "name": unique("stop"),
            "steps": [
                job_step("sleeper", 'python -c "import time; time.sleep(30)"'),
                condition("after", 1, 1, depend=["sleeper"]),
            ],
        },
    )
    wid = workflow.workflow_id
    execution = run(admin_client, wid)
    eid = execution.execution_id
    wait(admin_client, wid, eid, until=lambda e: statuses(e)["sleeper"] == "running")
    error = _error(
        lambda: admin_client.delete_workflow_execution(
            DeleteWorkflowExecutionRequest(workflow_id=wid, execution_id=eid)
        )
    )
    assert error.status_code == 400 and "stop it" in error.error_msg
    _action(admin_client, wid, eid, {"action_name": "stop"})
    done = wait(admin_client, wid, eid)
    assert done.status == "stopped"
    assert statuses(done) == {"sleeper": "stopped", "after": "init"}
    job = admin_client.show_training_job_details(
        ShowTrainingJobDetailsRequest(training_job_id=_job_id(step_of(done, "sleeper")))
    )
    assert job.status.phase == "Terminated"
    admin_client.delete_workflow_execution(DeleteWorkflowExecutionRequest(workflow_id=wid, execution_id=eid))


@pytest.mark.sdk_on_ray
def test_retry_rerun_and_cache(admin_client: Any, unique: Unique, tmp_path: Path) -> None:
    marker = tmp_path / "second-try"
    flaky = (
        f"python -c \"import os, sys; p = '{marker}'; ok = os.path.exists(p); open(p, 'w').close(); "
        'sys.exit(0 if ok else 3)"'
    )
    workflow = create(
        admin_client,
        {
            "name": unique("retry"),
            "steps": [
                job_step("flaky", flaky, outputs=[{"name": "out", "type": "obs", "config": {"obs_url": "/wf-out/x/"}}]),
                condition("check", "$ref/consumptions/flaky/out/obs_url", "/wf-out/x/", depend=["flaky"]),
            ],
        },
    )
    wid = workflow.workflow_id
    first = run(admin_client, wid)
    eid = first.execution_id
    failed = wait(admin_client, wid, eid)
    assert failed.status == "abnormal" and statuses(failed) == {"flaky": "failed", "check": "init"}
    flaky_step = step_of(failed, "flaky")
    assert "exit code 3" in flaky_step.error_info.error_message
    retried = _step_action(admin_client, wid, eid, flaky_step.uuid, {"action_name": "retry"})
    assert retried.status in ("creating", "created", "running", "completed")
    done = wait(admin_client, wid, eid)
    assert done.status == "completed" and statuses(done) == {"flaky": "completed", "check": "completed"}
    assert step_of(done, "check").conditions_execution.result == "true"
    job_first = _job_id(step_of(done, "flaky"))
    assert job_first != _job_id(flaky_step)

    # Rerun only the condition: the job's result is reused, not run again.
    rerun = _action(admin_client, wid, eid, {"action_name": "rerun", "policies": {"rerun_steps": ["check"]}})
    assert rerun.status in ("running", "completed")
    again = wait(admin_client, wid, eid)
    assert again.status == "completed"
    assert _job_id(step_of(again, "flaky")) == job_first
    assert sum("change status from running to completed" in e for e in step_of(again, "check").events) == 2

    cached = run(admin_client, wid, {"policies": {"use_cache": True}})
    done = wait(admin_client, wid, cached.execution_id)
    step = step_of(done, "flaky")
    assert done.status == "completed" and _job_id(step) == job_first
    assert any("use cache" in e for e in step.events) and step.policy.use_cache is True
