"""Workflow definitions through the official SDK: the seed's graph, every definition endpoint, and the
validation of bad graphs (each a 400 naming the step or field)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    DeleteWorkflowRequest,
    ListWorkflowsRequest,
    ShowWorkflowLabelsRequest,
    ShowWorkflowRequest,
    ShowWorkflowsOverviewRequest,
    ShowWorkflowsTodolistRequest,
    UpdateWorkflowRequest,
)

from tests.training.conftest import Raw
from tests.workflows.workflow_support import condition, create, job_step

Unique = Callable[[str], str]


def seed_graph(name: str, algorithm_id: str = "21ef85a8-5e40-4618-95ee-aa48ec224b43") -> dict[str, Any]:
    """The seed's "graph-test-has-condition-step" (show_workflow's example), as a create body."""

    def training(step: str, data: str, config: str, depend: list[str]) -> dict[str, Any]:
        return {
            "name": step,
            "title": "labeling",
            "description": "",
            "type": "job",
            "inputs": [{"name": "data_url", "type": "obs", "data": f"$ref/data/{data}"}],
            "outputs": [
                {"name": "train_url", "type": "obs", "config": {"obs_url": "/test-lh/test-metrics/"}},
                {
                    "name": "service-link",
                    "type": "service_content",
                    "config": {"config_file": f"$ref/parameters/{config}"},
                },
            ],
            "properties": {
                "algorithm": {"id": algorithm_id, "parameters": []},
                "kind": "job",
                "metadata": {"name": f"workflow-{data}"},
                "spec": {"resource": {"flavor_id": "$ref/parameters/train_spec", "node_count": 1, "policy": "regular"}},
            },
            "depend_steps": depend,
            "policy": {},
        }

    data_names = [
        "a2ff296da618452daa8243399f06db8e",
        "f78e46676a454ccdacb9907f589f8d67",
        "dee65054c96b4bf3b7ac98c0709f9ae0",
    ]
    return {
        "name": name,
        "description": "",
        "workspace_id": "0",
        "steps": [
            {
                "name": "condition_step_test",
                "title": "condition_step_test",
                "description": "",
                "type": "condition",
                "conditions": [{"type": "==", "left": "$ref/parameters/is_true", "right": True}],
                "if_then_steps": ["training_job1"],
                "else_then_steps": ["training_job2"],
                "policy": {},
            },
            training("training_job1", data_names[0], "service_config1", ["condition_step_test"]),
            training("training_job2", data_names[1], "service_config2", ["condition_step_test"]),
            training("training_job3", data_names[2], "service_config3", ["training_job1", "training_job2"]),
        ],
        "labels": ["subgraph"],
        "data": [
            {
                "name": n,
                "type": "obs",
                "value": {"obs_url": "/test-lh/test-metrics/"},
                "used_steps": [f"training_job{i + 1}"],
            }
            for i, n in enumerate(data_names)
        ],
        "parameters": [
            {"name": "is_true", "type": "bool", "delay": True, "value": True, "used_steps": ["condition_step_test"]},
            {
                "name": "train_spec",
                "type": "str",
                "format": "flavor",
                "description": "training specification",
                "default": "modelarts.vm.cpu.8u",
                "used_steps": ["training_job1", "training_job2", "training_job3"],
            },
        ]
        + [
            {
                "name": f"service_config{i}",
                "type": "str",
                "default": "/test-lh/test-metrics/metrics.json",
                "used_steps": [f"training_job{i}"],
            }
            for i in (1, 2, 3)
        ],
        "sub_graphs": [{"name": "stage_A", "steps": ["training_job1", "training_job2"]}],
        "policy": {},
    }


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def test_the_seed_graph_and_every_definition_endpoint(admin_client: Any, unique: Unique) -> None:
    name = unique("graph-test")
    created = create(admin_client, seed_graph(name))
    assert created.name == name and created.run_count == 0 and created.param_ready is True
    assert [s.name for s in created.steps] == ["condition_step_test", "training_job1", "training_job2", "training_job3"]
    assert created.steps[0].if_then_steps == ["training_job1"] and created.created_at[10] == "T"
    workflow_id = created.workflow_id

    shown = admin_client.show_workflow(ShowWorkflowRequest(workflow_id=workflow_id))
    assert shown.steps[1].properties["spec"]["resource"]["flavor_id"] == "$ref/parameters/train_spec"
    assert shown.labels == ["subgraph"] and shown.sub_graphs[0].steps == ["training_job1", "training_job2"]

    listed = admin_client.list_workflows(ListWorkflowsRequest(name=name, search_type="equal"))
    assert [w.workflow_id for w in listed.items] == [workflow_id] and listed.total == 1
    assert admin_client.list_workflows(ListWorkflowsRequest(name=name[:-3], search_type="equal")).total == 0
    assert admin_client.list_workflows(ListWorkflowsRequest(name=name[3:], labels="subgraph")).total == 1
    assert "subgraph" in admin_client.show_workflow_labels(ShowWorkflowLabelsRequest()).body
    overview = admin_client.show_workflows_overview(ShowWorkflowsOverviewRequest(name=name))
    assert (overview.total, overview.stat) == (1, {"init": 1})
    assert admin_client.show_workflows_todolist(ShowWorkflowsTodolistRequest()).total is not None

    steps = [*copy.deepcopy(seed_graph(name)["steps"]), condition("extra", 1, 2, op="<", depend=["training_job3"])]
    body = {"description": "changed", "labels": ["a", "b"], "steps": steps}
    updated = admin_client.update_workflow(UpdateWorkflowRequest(workflow_id=workflow_id, body=body))
    assert updated.description == "changed" and updated.labels == ["a", "b"] and len(updated.steps) == 5
    assert updated.steps[0].created_at == created.steps[0].created_at

    admin_client.delete_workflow(DeleteWorkflowRequest(workflow_id=workflow_id))
    error = _error(lambda: admin_client.show_workflow(ShowWorkflowRequest(workflow_id=workflow_id)))
    assert error.status_code == 404


def _broken(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    body = seed_graph("broken")
    change(body)
    return body


BAD: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("duplicate step", lambda b: b["steps"].append(copy.deepcopy(b["steps"][3])), "training_job3 is used twice"),
    ("unknown type", lambda b: b["steps"][3].update(type="teleport"), "step training_job3: type 'teleport'"),
    ("unknown dependency", lambda b: b["steps"][3].update(depend_steps=["nowhere"]), "'nowhere'"),
    ("cycle", lambda b: b["steps"][0].update(depend_steps=["training_job3"]), "cycle"),
    ("bad branch", lambda b: b["steps"][0].update(if_then_steps=["ghost"]), "if_then_steps names 'ghost'"),
    (
        "bad parameter ref",
        lambda b: b["steps"][1]["properties"]["spec"]["resource"].update(flavor_id="$ref/parameters/nope"),
        "$ref/parameters/nope",
    ),
    ("bad data ref", lambda b: b["steps"][1]["inputs"][0].update(data="$ref/data/nope"), "$ref/data/nope"),
    (
        "downstream consumption",
        lambda b: b["steps"][1]["inputs"][0].update(data="$ref/consumptions/training_job3/train_url"),
        "does not run before it",
    ),
    (
        "unknown output",
        lambda b: b["steps"][3]["inputs"][0].update(data="$ref/consumptions/training_job1/nope/obs_url"),
        "has no output nope",
    ),
    ("parameter type", lambda b: b["parameters"][0].update(value="yes"), "parameter is_true must be a bool"),
    ("enum", lambda b: b["parameters"][1].update(enum=["modelarts.vm.cpu.2u"]), "must be one of"),
    ("parameter name", lambda b: b["parameters"][1].update(name="9lives"), "parameter name '9lives'"),
    ("step name", lambda b: b["steps"][3].update(name="_job"), "step name '_job'"),
    ("workflow name", lambda b: b.update(name="-x"), "workflow name '-x'"),
    ("condition operator", lambda b: b["steps"][0].update(conditions=[{"type": "~", "left": 1, "right": 1}]), "'~'"),
    ("unknown field", lambda b: b["steps"][0].update(colour="red"), "steps.0.colour"),
]


@pytest.mark.parametrize(("label", "change", "message"), BAD, ids=[item[0] for item in BAD])
def test_bad_definitions_are_400(
    admin_client: Any, label: str, change: Callable[[dict[str, Any]], None], message: str
) -> None:
    error = _error(lambda: create(admin_client, _broken(change)))
    assert error.status_code == 400, label
    assert error.error_code == "ModelArts.0101"
    assert message in error.error_msg


def test_raw_bodies_and_others_workflows(raw: Raw, outsider_client: Any, admin_client: Any, unique: Unique) -> None:
    assert raw("POST", "/v2/{project_id}/workflows", b"{not json").status_code == 400
    assert raw("POST", "/v2/{project_id}/workflows", []).json()["error_code"] == "ModelArts.0101"
    workflow = create(admin_client, {"name": unique("mine"), "steps": [condition("c", 1, 1)]})
    error = _error(lambda: outsider_client.show_workflow(ShowWorkflowRequest(workflow_id=workflow.workflow_id)))
    assert error.status_code == 404
    assert raw("GET", "/v2/{project_id}/workflows?limit=0").status_code == 400
    assert raw("GET", "/v2/{project_id}/workflows?search_type=fuzzy&name=x").status_code == 400
    job = job_step("j", "python -c pass")
    job["properties"] = {}
    assert raw("POST", "/v2/{project_id}/workflows", {"name": "w", "steps": [job]}).status_code == 400
