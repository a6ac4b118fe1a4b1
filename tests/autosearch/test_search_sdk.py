"""Hyperparameter search through the official SDK: real algorithms proposing real trial processes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    JobActionType,
    ListTrainingJobEventsRequest,
    ShowAutoSearchParamAnalysisResultPathRequest,
    ShowAutoSearchParamsAnalysisRequest,
    ShowAutoSearchPerTrialRequest,
    ShowAutoSearchTrialEarlyStopRequest,
    ShowAutoSearchYamlTemplateContentRequest,
    ShowAutoSearchYamlTemplatesInfoRequest,
    ShowSearchAlgorithmsRequest,
    StopTrainingJobRequest,
)

from tests.autosearch.search_support import rows, search_job, search_policy, trials
from tests.autosearch.test_algorithms import SEED_EXAMPLE
from tests.support.server import LiveServer
from tests.training.jobs_support import get_bytes, wait_for

Unique = Callable[[str], str]


def test_search_algorithms_example(admin_client: Any) -> None:
    response = admin_client.show_search_algorithms(ShowSearchAlgorithmsRequest())
    assert response.to_json_object() == SEED_EXAMPLE  # the manual's example, as written


def test_yaml_templates(admin_client: Any) -> None:
    catalogue = admin_client.show_auto_search_yaml_templates_info(ShowAutoSearchYamlTemplatesInfoRequest())
    hpo = next(t for t in catalogue.yaml_templates if t.algorithm_type_en == "hpo")
    assert {"Bayes", "TPE", "Anneal"} <= set(hpo.algorithm_names)
    content = admin_client.show_auto_search_yaml_template_content(
        ShowAutoSearchYamlTemplateContentRequest(algorithm_type="hpo", algorithm_name="Bayes")
    )
    assert content.file_name == "Bayes.yaml" and "bayes_opt_search" in content.content


@pytest.mark.parametrize("algorithm", ["tpe_search", "anneal_search", "bayes_opt_search"])
def test_a_search_finds_the_optimum(server: LiveServer, admin_client: Any, unique: Unique, algorithm: str) -> None:
    """(x, y) = (1.5, -2.0) minimises the trial's loss; 16 trials get close to it."""
    extra = {"n_initial_points": "6"} if algorithm == "tpe_search" else {}
    policy = search_policy(algorithm, samples=16, seed=3, extra=extra)
    name = unique(algorithm.split("_")[0])
    created = admin_client.create_training_job(search_job(name, server, policy))
    done = wait_for(admin_client, created.metadata.id, timeout=180)
    assert done.status.phase == "Completed", done.status.task_statuses
    table = rows(admin_client, created.metadata.id)
    assert len(table) == 16 and {row["status"] for row in table} == {"TERMINATED"}
    best = min(float(row["loss"]) for row in table)
    assert best < 2.0, table  # random guessing over [-5, 5]^2 averages about 20
    first = table[0]
    assert set(first["config"]) >= {"x", "y", "trial_index", "param/x", "param/y"}
    assert all(isinstance(cell, str) for key, cell in first.items() if key != "config")
    assert len(first["trial_id"]) == 8 and first["done"] == "True" and first["reward_attr"] == "loss"


def test_the_same_seed_proposes_the_same_trials(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    configs: list[list[tuple[Any, Any]]] = []
    for _ in range(2):
        created = admin_client.create_training_job(
            search_job(unique("seeded") + f"-{len(configs)}", server, search_policy("tpe_search", samples=6, seed=7))
        )
        assert wait_for(admin_client, created.metadata.id, timeout=120).status.phase == "Completed"
        configs.append([(row["config"]["x"], row["config"]["y"]) for row in rows(admin_client, created.metadata.id)])
    assert configs[0] == configs[1]
    other = admin_client.create_training_job(
        search_job(unique("other-seed"), server, search_policy("tpe_search", samples=6, seed=8))
    )
    wait_for(admin_client, other.metadata.id, timeout=120)
    assert [(row["config"]["x"], row["config"]["y"]) for row in rows(admin_client, other.metadata.id)] != configs[0]


SLOW = """
import sys, time
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
for step in range(600):
    print(f"loss={100 - step}", flush=True)
    time.sleep(0.1)
"""


@pytest.mark.sdk_on_ray
def test_early_stop_of_a_running_trial(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    policy = search_policy("anneal_search", samples=2)
    created = admin_client.create_training_job(search_job(unique("early"), server, policy, script=SLOW))
    job_id = created.metadata.id
    wait_for(admin_client, job_id, ("Running",))
    running = []
    for _ in range(100):
        running = [
            row for row in rows(admin_client, job_id) if row["status"] == "RUNNING" and row["training_iteration"] != "0"
        ]
        if running:
            break
        time.sleep(0.1)
    trial_id = running[0]["trial_id"]
    stopped = admin_client.show_auto_search_trial_early_stop(
        ShowAutoSearchTrialEarlyStopRequest(training_job_id=job_id, trial_id=trial_id)
    )
    assert stopped.earlystop_trial == trial_id
    for _ in range(100):
        row = next(r for r in rows(admin_client, job_id) if r["trial_id"] == trial_id)
        if row["status"] != "RUNNING":
            break
        time.sleep(0.1)
    assert row["status"] == "TERMINATED" and row["loss"]  # it keeps the last reward it reported
    detail = admin_client.show_auto_search_per_trial(
        ShowAutoSearchPerTrialRequest(training_job_id=job_id, trial_id=trial_id)
    )
    assert len(detail.data) >= 1 and detail.data[-1][0] == "True"
    with pytest.raises(ClientRequestException) as caught:
        admin_client.show_auto_search_trial_early_stop(
            ShowAutoSearchTrialEarlyStopRequest(training_job_id=job_id, trial_id=trial_id)
        )
    assert caught.value.status_code == 400
    admin_client.stop_training_job(
        StopTrainingJobRequest(training_job_id=job_id, body=JobActionType(action_type="terminate"))
    )
    assert wait_for(admin_client, job_id, timeout=60).status.phase == "Terminated"
    assert {row["status"] for row in rows(admin_client, job_id)} <= {"TERMINATED", "ERROR"}


@pytest.mark.sdk_on_ray
def test_a_trial_whose_log_never_matches_is_an_error(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    policy = search_policy("tpe_search", samples=2, regex=r"accuracy=([0-9.]+)")
    created = admin_client.create_training_job(search_job(unique("nomatch"), server, policy))
    done = wait_for(admin_client, created.metadata.id, timeout=60)
    assert done.status.phase == "Failed"
    assert "all 2 trials failed" in done.status.task_statuses[0].message
    table = trials(admin_client, created.metadata.id)
    assert [row[table.items.header.index("status")] for row in table.items.data] == ["ERROR", "ERROR"]


@pytest.mark.sdk_on_ray
def test_parameter_analysis(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    name = unique("analysed")
    outputs = {"out": f"obs://search-bucket/{name}/out/"}
    script = "import sys\nargs = dict(a.lstrip('-').split('=', 1) for a in sys.argv[1:] if '=' in a)\n" + (
        "print(f\"loss={(float(args['x']) - 1.5) ** 2:.6f}\")\n"
    )
    created = admin_client.create_training_job(
        search_job(name, server, search_policy("tpe_search", samples=8), script=script, outputs=outputs)
    )
    assert wait_for(admin_client, created.metadata.id, timeout=120).status.phase == "Completed"
    analysis = admin_client.show_auto_search_params_analysis(
        ShowAutoSearchParamsAnalysisRequest(training_job_id=created.metadata.id)
    )
    assert analysis.header == ["parameters", "the mean/std of importance"]
    importance = {row[0]: float(row[1].split("/")[0]) for row in analysis.data}
    assert importance["x"] > importance["y"]  # the loss depends on x only
    plot = admin_client.show_auto_search_param_analysis_result_path(
        ShowAutoSearchParamAnalysisResultPathRequest(training_job_id=created.metadata.id, parameter_name="x")
    )
    assert plot.file_path.endswith("/x.png")
    assert get_bytes(server, "obs:/" + plot.file_path).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    "change",
    [
        {"algo_configs": [{"name": "grid_search", "params": []}]},
        {"algo_configs": [{"name": "tpe_search", "params": [{"key": "gamma", "value": "lots"}]}]},
        {"algo_configs": [{"name": "tpe_search", "params": [{"key": "colour", "value": "1"}]}]},
        {"search_params": [{"name": "x", "param_type": "continuous", "lower_bound": "5", "upper_bound": "1"}]},
        {"search_params": [{"name": "x", "param_type": "sideways"}]},
    ],
)
def test_bad_searches_are_refused(raw: Any, server: LiveServer, unique: Unique, change: dict[str, Any]) -> None:
    name = unique("badsearch")
    request = search_job(name, server, search_policy())
    body = json.loads(json.dumps(request.body.to_dict()))
    body = {k: v for k, v in body.items() if v is not None}
    body["algorithm"] = {k: v for k, v in body["algorithm"].items() if v is not None}
    body["algorithm"]["policies"]["auto_search"].update(change)
    response = raw("POST", "/v2/{project_id}/training-jobs", body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] in ("ModelArts.2826", "ModelArts.2825")


CURVE = """
import sys, time
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
base = (float(args["x"]) - 1.5) ** 2 + (float(args["y"]) + 2.0) ** 2
for step in range(20):
    print(f"loss={base * (1 + 1 / (step + 1)):.6f}", flush=True)
    time.sleep(0.05)
"""


def test_the_median_stopping_rule(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    """Opted into with an annotation: trials worse than the median of earlier ones at the same report
    count are stopped early, and say why."""
    request = search_job(unique("median"), server, search_policy("anneal_search", samples=10, seed=2), script=CURVE)
    request.body.metadata.annotations = {"autosearch/early-stopping": "median"}
    created = admin_client.create_training_job(request)
    assert wait_for(admin_client, created.metadata.id, timeout=120).status.phase == "Completed"
    table = rows(admin_client, created.metadata.id)
    stopped = [row for row in table if int(row["training_iteration"]) < 20]
    assert stopped, table
    assert all(row["status"] == "TERMINATED" for row in stopped)
    detail = admin_client.show_auto_search_per_trial(
        ShowAutoSearchPerTrialRequest(training_job_id=created.metadata.id, trial_id=stopped[0]["trial_id"])
    )
    assert detail.data[-1][0] == "True"
    events = admin_client.list_training_job_events(
        ListTrainingJobEventsRequest(training_job_id=created.metadata.id, limit=100)
    )
    reasons = [e.message for e in events.events if "median stopping rule" in e.message]
    assert any(stopped[0]["trial_id"] in reason for reason in reasons)


def test_unknown_early_stopping_rules_are_refused(admin_client: Any, server: LiveServer, unique: Unique) -> None:
    request = search_job(unique("rule"), server, search_policy())
    request.body.metadata.annotations = {"autosearch/early-stopping": "hyperband"}
    with pytest.raises(ClientRequestException) as caught:
        admin_client.create_training_job(request)
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2826")
