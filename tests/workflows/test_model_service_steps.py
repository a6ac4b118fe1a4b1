"""Model and service steps through the official SDK with real jobs, real model publishing and real model
processes: the scikit-learn example workflow end to end (train, register, deploy, call), the seed's
delayed ``model_list`` requirements filled by ``continue``, and a model step over a bad package.

These tests run on a server of their own with a 3-CPU pool: a 2-CPU training job must run beside a
deployed service (the session server's 2 CPUs would queue the calling job behind the service for good),
and every service deployed here is deleted when the module ends, so no model process outlives it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkmodelarts.v1 import CreateWorkflowStepExecutionsActionsRequest

from examples.sklearn_workflow import workflow as example
from tests.services.support import (
    TINY,
    Api,
    delete_all_services,
    kill_leftovers,
    obs_dir,
    published_model,
    write_sklearn_package,
)
from tests.support.databases import fresh_database
from tests.support.server import LiveServer, own_server
from tests.workflows.workflow_support import create, run, statuses, step_of, wait

Unique = Callable[[str], str]
CALLER_PASSWORD = "Caller-pass-1234"


@pytest.fixture(scope="module")
def wf_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp(f"wf-service-server-{backend}")
    with (
        fresh_database(backend, folder) as url,
        own_server(
            url,
            folder,
            cpus=3,
            memory_gb=32,
            clean_up=lambda live: delete_all_services(Api(live)),  # no model server may outlive the tests
            kill_leftovers=kill_leftovers,
        ) as live,
    ):
        yield live


@pytest.fixture(scope="module")
def wf_api(wf_server: LiveServer) -> Api:
    return Api(wf_server)


@pytest.fixture
def services_of_test(wf_api: Api) -> Iterator[list[str]]:
    """Service ids a test's steps deployed; deleted when the test ends, pass or fail."""
    deployed: list[str] = []
    yield deployed
    if deployed:
        wf_api.call("DELETE", "/v1/{project_id}/services/" + ",".join(deployed))


def _step_action(client: Any, workflow_id: str, execution_id: str, step_id: str, body: dict[str, Any]) -> Any:
    return client.create_workflow_step_executions_actions(
        CreateWorkflowStepExecutionsActionsRequest(
            workflow_id=workflow_id, execution_id=execution_id, step_execution_id=step_id, body=body
        )
    )


def _caller_token(server: LiveServer, unique: Unique) -> str:
    """An IAM token of a member user (not the admin) made only to call services."""
    user = server.create_user(unique("caller"), password=CALLER_PASSWORD)
    identity = {"name": user["user_name"], "password": CALLER_PASSWORD, "domain": {"name": user["domain_name"]}}
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": identity}},
            "scope": {"project": {"id": user["project_id"]}},
        }
    }
    response = httpx.post(server.url + "/v3/auth/tokens", json=body, timeout=30)
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def _service_id(step: Any) -> str:
    service_id: str = json.loads(step.instance_id)["service_id"]
    return service_id


def test_the_sklearn_example_trains_registers_deploys_and_calls(
    wf_server: LiveServer, wf_api: Api, unique: Unique, services_of_test: list[str]
) -> None:
    client = wf_server.client()
    prefix = unique("sklearn-wf")
    shutil.copytree(example.CODE, obs_dir(wf_server, "examples", prefix) / "code")
    credentials = obs_dir(wf_server, "examples", prefix) / "credentials"
    credentials.mkdir()
    (credentials / "token").write_text(_caller_token(wf_server, unique))

    model_name = unique("iris").replace("-", "_")
    workflow = create(client, example.definition(unique("sklearn"), f"/examples/{prefix}", model_name))
    wid = workflow.workflow_id
    execution = run(client, wid)
    try:
        done = wait(client, wid, execution.execution_id, timeout=150)
    finally:
        shown = wait(client, wid, execution.execution_id, until=lambda e: True)
        deploy = step_of(shown, "deploy")
        if deploy.instance_id:
            services_of_test.append(_service_id(deploy))
    problems = [(s.step_name, s.error_info) for s in done.steps_execution]
    assert done.status == "completed", problems
    assert statuses(done) == {"train": "completed", "register": "completed", "deploy": "completed", "call": "completed"}

    register = step_of(done, "register")
    model_id = json.loads(register.instance_id)["model_id"]
    assert register.outputs[0].config == {"model_id": model_id, "model_name": model_name, "model_version": "1.0.0"}
    assert register.inputs[0].value == {"obs_url": f"/examples/{prefix}/output/"}
    assert [e.split(" ", 2)[2] for e in register.events] == [
        "change status from init to creating",
        "change status from creating to created",
        "change status from created to running",
        "change status from running to completed",
    ]
    model = wf_api.ok("GET", f"/v1/{{project_id}}/models/{model_id}")
    assert (model["model_status"], model["model_type"]) == ("published", "Scikit_Learn")

    deploy = step_of(done, "deploy")
    service_id = _service_id(deploy)
    output = deploy.outputs[0].config
    assert output["service_id"] == service_id
    assert output["access_address"] == f"{wf_server.url}/v1/infers/{service_id}"
    service = wf_api.ok("GET", f"/v1/{{project_id}}/services/{service_id}")
    assert service["status"] == "running" and service["config"][0]["model_id"] == model_id
    assert service["schedule"][0] == {"type": "stop", "time_unit": "HOURS", "duration": 1}

    # The calling job got the address through its environment and the token from its input folder.
    prediction = json.loads((obs_dir(wf_server, "examples", prefix) / "result" / "prediction.json").read_text())
    assert [row["predictresult"] for row in prediction["data"]["resp_data"]] == [0, 2]
    call = step_of(done, "call")
    # The SDK types properties as a map of strings: the algorithm arrives as its text.
    assert f"'INFER_ADDRESS': '{output['access_address']}'" in str(call.properties["algorithm"])
    # The token never shows in the workflow, the execution or the job.
    assert "MIIOA" not in json.dumps([s.to_dict() for s in done.steps_execution], default=str)


def test_the_seed_delayed_model_list_waits_for_continue(
    wf_server: LiveServer, wf_api: Api, unique: Unique, services_of_test: list[str]
) -> None:
    """The seed's "workflow-service-infer": two service steps on delayed model_list requirements; the
    second gets the first's access_address as an environment variable through its requirement's envs."""
    client = wf_server.client()
    model_name = unique("seed-model").replace("-", "_")
    model_id = published_model(wf_api, model_name, write_sklearn_package(wf_server, "seed", unique("pkg")))
    conditions = [{"attribute": "model_name", "operator": "equal", "value": model_name}]
    address = "$ref/consumptions/service_step/service_output/access_address"
    properties = {"schedule": "$ref/parameters/schedule_KZ27", "specification": "custom", "custom_spec": TINY}
    body = {
        "name": unique("workflow-service-infer"),
        "data_requirements": [
            {"name": "si_placeholder1", "type": "model_list", "delay": True, "conditions": conditions},
            {
                "name": "si_placeholder2",
                "type": "model_list",
                "delay": True,
                "conditions": [
                    *conditions,
                    {"attribute": "envs", "operator": "equal", "value": {"infer_address": address}},
                ],
            },
        ],
        "parameters": [
            {"name": "schedule_KZ27", "type": "int", "format": "schedule", "delay": True},
            {"name": "placeholder_name", "type": "str", "value": "model_test4444"},
        ],
        "steps": [
            {
                "name": "service_step",
                "type": "service",
                "inputs": [
                    {"name": "si_placeholder1", "type": "model", "data": "$ref/data_requirements/si_placeholder1"}
                ],
                "outputs": [{"name": "service_output", "type": "service"}],
                "properties": properties,
            },
            {
                "name": "service_step2",
                "type": "service",
                "inputs": [
                    {"name": "si_placeholder2", "type": "model", "data": "$ref/data_requirements/si_placeholder2"}
                ],
                "outputs": [{"name": "service_output", "type": "service"}],
                "properties": properties,
                "depend_steps": ["service_step"],
            },
        ],
    }
    workflow = create(client, body)
    wid = workflow.workflow_id
    execution = run(client, wid)
    eid = execution.execution_id
    assert statuses(execution) == {"service_step": "wait_inputs", "service_step2": "init"}
    first = step_of(execution, "service_step")
    assert first.events[0].endswith("change status from init to wait_inputs")
    assert any(e.endswith("step service_step change status from init to wait_inputs") for e in execution.events)

    supplied = {
        "action_name": "continue",
        "parameters": [{"name": "schedule_KZ27", "value": -1}],
        "data_requirements": [{"name": "si_placeholder1", "value": {"model_id": model_id}}],
    }
    _step_action(client, wid, eid, first.uuid, supplied)
    shown = wait(client, wid, eid, until=lambda e: statuses(e)["service_step2"] == "wait_inputs", timeout=90)
    first = step_of(shown, "service_step")
    services_of_test.append(_service_id(first))
    assert first.status == "completed", first.error_info
    first_address = first.outputs[0].config["access_address"]
    assert [e.split(" ", 2)[2] for e in first.events][1:3] == [
        "change status from wait_inputs to pending",
        "change status from pending to creating",
    ]
    service = wf_api.ok("GET", f"/v1/{{project_id}}/services/{_service_id(first)}")
    assert service["status"] == "running" and not service.get("schedule")

    second = step_of(shown, "service_step2")
    _step_action(
        client,
        wid,
        eid,
        second.uuid,
        {
            "action_name": "continue",
            "data_requirements": [{"name": "si_placeholder2", "value": {"model_id": model_id}}],
        },
    )
    done = wait(client, wid, eid, timeout=90)
    assert done.status == "completed", [(s.step_name, s.error_info) for s in done.steps_execution]
    second = step_of(done, "service_step2")
    services_of_test.append(_service_id(second))
    service = wf_api.ok("GET", f"/v1/{{project_id}}/services/{_service_id(second)}")
    assert service["config"][0]["envs"] == {"infer_address": first_address}
    # Both answer on their access_address.
    row = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}
    for address_of in (first_address, second.outputs[0].config["access_address"]):
        answer = wf_api.call("POST", address_of, {"data": {"req_data": [row]}})
        assert answer.status_code == 200, answer.text


def test_a_model_step_over_a_bad_package_fails_with_the_reason(wf_server: LiveServer, unique: Unique) -> None:
    """The seed's model step form: its input is a data requirement's obs folder; config.json is broken."""
    client = wf_server.client()
    prefix = unique("bad-package")
    folder: Path = obs_dir(wf_server, "seed", prefix) / "model"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "Scikit_Learn", "apis": "not a list"')
    (folder / "model.m").write_bytes(b"not a model")
    workflow = create(
        client,
        {
            "name": unique("bad-model"),
            "data_requirements": [{"name": "model_input", "type": "obs", "delay": False}],
            "steps": [
                {
                    "name": "model_step",
                    "type": "model",
                    "title": "model release",
                    "inputs": [{"name": "model_input", "type": "obs", "data": "$ref/data_requirements/model_input"}],
                    "outputs": [{"name": "model_output", "type": "model"}],
                    "properties": {"model_name": unique("lh-xh"), "model_type": "Scikit_Learn"},
                }
            ],
        },
    )
    value = {"object_type": ["DIRECTORY"], "obs_url": f"/seed/{prefix}/"}
    execution = run(client, workflow.workflow_id, {"data_requirements": [{"name": "model_input", "value": value}]})
    done = wait(client, workflow.workflow_id, execution.execution_id, timeout=60)
    assert done.status == "abnormal"
    step = step_of(done, "model_step")
    assert step.status == "failed"
    assert step.inputs[0].value == value
    assert json.loads(step.instance_id)["model_id"] == step.outputs[0].config["model_id"]
    assert "config.json" in step.error_info.error_message, step.error_info
