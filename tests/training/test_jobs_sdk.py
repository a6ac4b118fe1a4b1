"""Training jobs that really run, through the official SDK against a live server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    BatchDeleteJobItem,
    BatchDeleteJobsReq,
    BatchDeleteTrainingJobRequest,
    ChangeTrainingJobDescriptionRequest,
    DeleteTrainingJobRequest,
    Filter,
    JobActionType,
    JobSearches,
    JobUpdateRequestBody,
    ListTrainingJobEventsRequest,
    ListTrainingJobsRequest,
    ListTrainingJobTasksRequest,
    ShowTrainingJobEnginesRequest,
    ShowTrainingJobFlavorsRequest,
    ShowTrainingJobLogsFromAomRequest,
    ShowTrainingJobLogsPreviewRequest,
    ShowTrainingJobMetricsRequest,
    StopTrainingJobRequest,
    TrainingExperimentRequest,
    ValidateTrainingJobNameRequest,
)

from tests.autosearch.search_support import search_job, search_policy
from tests.support.executors import on_ray
from tests.support.server import LiveServer
from tests.training.conftest import Raw
from tests.training.jobs_support import get, get_bytes, job, put, python_job, wait_for

Unique = Callable[[str], str]

TRAIN_SCRIPT = """
import argparse, csv, pickle, os
from sklearn.linear_model import LogisticRegression
parser = argparse.ArgumentParser()
parser.add_argument("--data_url"); parser.add_argument("--train_url"); parser.add_argument("--max_iter", type=int)
args = parser.parse_args()
rows = list(csv.reader(open(os.path.join(args.data_url, "train.csv"))))
X = [[float(a), float(b)] for a, b, _ in rows]; y = [int(c) for _, _, c in rows]
model = LogisticRegression(max_iter=args.max_iter).fit(X, y)
print("training accuracy", model.score(X, y))
with open(os.path.join(args.train_url, "model.pkl"), "wb") as f:
    pickle.dump(model, f)
"""


@pytest.mark.sdk_on_ray
def test_a_real_training_job(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    """scikit-learn trains on data uploaded to the object store and writes its model to the output."""
    bucket = "train-bucket"
    rows = "\n".join(f"{i % 7},{i % 5},{int(i % 7 > 3)}" for i in range(60))
    put(server, f"obs://{bucket}/data/train.csv", rows)
    name = unique("sklearn")
    request = python_job(
        name,
        bucket,
        TRAIN_SCRIPT,
        server,
        parameters={"max_iter": "200"},
        inputs={"data_url": f"obs://{bucket}/data/"},
        outputs={"train_url": f"/{bucket}/{name}/output/"},
    )
    created = admin_client.create_training_job(request)
    assert created.status.phase == "Creating"
    assert created.status.tasks == ["worker-0"]
    assert created.spec.resource.flavor_id == "modelarts.vm.cpu.2u"
    assert created.algorithm.engine.engine_id
    assert created.algorithm.parameters[0].constraint.editable is True

    done = wait_for(admin_client, created.metadata.id)
    assert done.status.phase == "Completed", done.status.task_statuses
    assert done.status.duration > 0 and done.status.start_time >= created.metadata.create_time
    assert done.status.task_statuses[0].exit_code == 0
    model = get_bytes(server, f"obs://{bucket}/{name}/output/model.pkl")  # uploaded at the end
    assert model.startswith(b"\x80")  # a pickle; the test reads it, the server never unpickles anything

    job_id = done.metadata.id
    preview = admin_client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
    )
    assert "training accuracy" in preview.content and preview.full_size == preview.current_size
    page = admin_client.show_training_job_logs_from_aom(
        ShowTrainingJobLogsFromAomRequest(training_job_id=job_id, task_id="worker-0", lines=5, order="asc")
    )
    assert page.lines >= 1 and page.start_line == "0"
    metrics = admin_client.show_training_job_metrics(
        ShowTrainingJobMetricsRequest(training_job_id=job_id, task_id="worker-0")
    )
    assert {m.metric for m in metrics.metrics} >= {"cpuUsage", "memUsage"}
    events = admin_client.list_training_job_events(ListTrainingJobEventsRequest(training_job_id=job_id, order="asc"))
    messages = [e.message for e in events.events]
    assert messages[0] == "Job created." and any("running" in m for m in messages)
    tasks = admin_client.list_training_job_tasks(ListTrainingJobTasksRequest(training_job_id=job_id))
    assert [t.task for t in tasks.body] == ["worker-0"]


@pytest.mark.sdk_on_ray
def test_a_failing_job_reports_its_exit_code(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    name = unique("fails")
    script = (
        "import os, sys\n"
        "open(os.path.join(sys.argv[-1].split('=', 1)[1], 'partial.txt'), 'w').write('so far')\n"
        "print('about to fail')\n"
        "sys.exit(3)\n"
    )
    outputs = {"out": f"obs://fail-bucket/{name}/out/"}
    created = admin_client.create_training_job(python_job(name, "fail-bucket", script, server, outputs=outputs))
    done = wait_for(admin_client, created.metadata.id)
    assert done.status.phase == "Failed"
    status = done.status.task_statuses[0]
    assert status.exit_code == 3
    assert "about to fail" in status.message
    assert get(server, f"obs://fail-bucket/{name}/out/partial.txt") == "so far"  # outputs go up also on failure


@pytest.mark.sdk_on_ray
def test_parameters_arrive_literally(server: LiveServer, admin_client: Any, unique: Unique, tmp_path: Path) -> None:
    name = unique("inject")
    pwn = tmp_path / "pwn"
    hostile = {
        "semicolon": f"x; touch {pwn}",
        "subshell": f"$(touch {pwn})",
        "backtick": f"`touch {pwn}`",
        "quotes": "'\"both\"'",
        "newline": "line1\nline2",
        "dashes": "--help",
    }
    script = (
        "import json, os, sys\n"
        "out = sys.argv[-1].split('=', 1)[1]\n"
        "open(os.path.join(out, 'argv.json'), 'w').write(json.dumps(sys.argv[1:]))\n"
    )
    request = python_job(
        name, "inject-bucket", script, server, parameters=hostile, outputs={"out": f"obs://inject-bucket/{name}/out/"}
    )
    created = admin_client.create_training_job(request)
    assert wait_for(admin_client, created.metadata.id).status.phase == "Completed"
    argv = json.loads(get(server, f"obs://inject-bucket/{name}/out/argv.json"))
    for key, value in hostile.items():
        assert f"--{key}={value}" in argv
    assert not pwn.exists()


@pytest.mark.sdk_on_ray
def test_stop_a_running_job(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    name = unique("stopme")
    script = "import time\nprint('started', flush=True)\ntime.sleep(60)\n"
    created = admin_client.create_training_job(python_job(name, "stop-bucket", script, server))
    wait_for(admin_client, created.metadata.id, ("Running",))
    # Local executor only: on Ray, usage reports zero (the figures are behind the cluster's metrics agent,
    # not Ray Jobs; docs/operations.md), so there is no process tree here to sample.
    if not on_ray():
        request = ShowTrainingJobMetricsRequest(training_job_id=created.metadata.id, task_id="worker-0")
        deadline = time.monotonic() + 20
        while True:  # sampled from the real process tree a couple of seconds after it starts
            memory = next(m for m in admin_client.show_training_job_metrics(request).metrics if m.metric == "memUsage")
            if (memory.value and memory.value[0] > 0) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert memory.value and memory.value[0] > 0
    stopped = admin_client.stop_training_job(
        StopTrainingJobRequest(training_job_id=created.metadata.id, body=JobActionType(action_type="terminate"))
    )
    assert stopped.status.phase in ("Terminating", "Terminated")
    done = wait_for(admin_client, created.metadata.id, timeout=30)
    assert done.status.phase == "Terminated"
    with pytest.raises(ClientRequestException) as caught:
        admin_client.stop_training_job(
            StopTrainingJobRequest(training_job_id=created.metadata.id, body=JobActionType(action_type="terminate"))
        )
    assert (caught.value.status_code, caught.value.error_code) == (409, "ModelArts.2796")


def test_jobs_queue_for_capacity(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    """The test server offers two CPUs: a second 2u job waits, in order, until the first ends."""
    first = admin_client.create_training_job(
        python_job(unique("first"), "queue-bucket", "import time\ntime.sleep(2)\n", server)
    )
    second = admin_client.create_training_job(python_job(unique("second"), "queue-bucket", "print('second')\n", server))
    wait_for(admin_client, first.metadata.id, ("Running",))
    queued = wait_for(admin_client, second.metadata.id, ("Pending", "Running", *("Completed",)))
    assert queued.status.phase == "Pending" and queued.status.secondary_phase == "Queuing"
    first_done = wait_for(admin_client, first.metadata.id)
    second_done = wait_for(admin_client, second.metadata.id)
    assert first_done.status.phase == second_done.status.phase == "Completed"
    assert second_done.status.start_time >= first_done.status.start_time + first_done.status.duration - 50


def test_list_filters_sorts_and_pages(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    tag = unique("listed")
    ids = [admin_client.create_training_job(job(f"{tag}-{i}", command="python -c pass")).metadata.id for i in range(3)]
    for job_id in ids:
        wait_for(admin_client, job_id)
    like = Filter(key="name", operator="like", value=[tag])
    listed = admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like], order="asc")))
    assert [j.metadata.id for j in listed.items] == ids
    assert (listed.total, listed.count, listed.ai_project) == (3, 3, "default-ai-project")
    page = admin_client.list_training_jobs(
        ListTrainingJobsRequest(body=JobSearches(filters=[like], order="asc", offset=1, limit=1))
    )
    assert (page.total, [j.metadata.id for j in page.items]) == (3, [ids[1]])
    completed = Filter(key="phase", operator="in", value=["Completed"])
    assert (
        admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like, completed]))).total == 3
    )
    failed = Filter(key="phase", operator="in", value=["Failed"])
    assert admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like, failed]))).total == 0


def test_update_delete_and_names(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    name = unique("lifecycle")
    created = admin_client.create_training_job(job(name, command="python -c pass"))
    taken = admin_client.validate_training_job_name(ValidateTrainingJobNameRequest(job_name=name, workspace_id="0"))
    assert taken.is_duplicate is True
    free = admin_client.validate_training_job_name(ValidateTrainingJobNameRequest(job_name=name + "x"))
    assert free.is_duplicate is False
    wait_for(admin_client, created.metadata.id)
    admin_client.change_training_job_description(
        ChangeTrainingJobDescriptionRequest(
            training_job_id=created.metadata.id, body=JobUpdateRequestBody(description="new words")
        )
    )
    assert wait_for(admin_client, created.metadata.id).metadata.description == "new words"
    admin_client.delete_training_job(DeleteTrainingJobRequest(training_job_id=created.metadata.id))
    with pytest.raises(ClientRequestException) as caught:
        wait_for(admin_client, created.metadata.id)
    assert caught.value.error_code == "ModelArts.2775"


def test_catalogues(admin_client: Any) -> None:
    flavors = admin_client.show_training_job_flavors(ShowTrainingJobFlavorsRequest(flavor_type="CPU"))
    ids = [f.flavor_id for f in flavors.flavors]
    assert "modelarts.vm.cpu.2u" in ids and "modelarts.vm.cpu.8u" in ids
    assert flavors.total_count == len(ids)
    engines = admin_client.show_training_job_engines(ShowTrainingJobEnginesRequest())
    assert engines.total >= 1 and engines.items[0].engine_id


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ({"algorithm_id": "00000000-0000-0000-0000-000000000000"}, "ModelArts.2755"),
        ({"command": "python -c pass", "flavor": "modelarts.vm.cpu.999u"}, "ModelArts.2781"),
        ({"code_dir": "obs://nowhere-bucket/code/", "boot_file": "obs://nowhere-bucket/code/x.py"}, "ModelArts.2757"),
        ({"code_dir": "obs://b../code/", "boot_file": "obs://b../code/x.py"}, "ModelArts.2791"),
        ({"command": "python -c pass", "inputs": {"data": "/missing-bucket/data/"}}, "ModelArts.2753"),
        ({"command": "python -c pass", "outputs": {"out": "/../etc/"}}, "ModelArts.2791"),
        ({}, "ModelArts.2788"),  # no algorithm source at all
    ],
)
def test_bad_creates_leave_nothing(admin_client: Any, unique: Unique, options: dict[str, Any], code: str) -> None:
    name = unique("bad")
    with pytest.raises(ClientRequestException) as caught:
        admin_client.create_training_job(job(name, **options))
    assert (caught.value.status_code, caught.value.error_code) == (400, code)
    like = Filter(key="name", operator="like", value=[name])
    assert admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like]))).total == 0


def test_duplicate_names_and_page_sizes(admin_client: Any, unique: Unique) -> None:
    name = unique("dup")
    admin_client.create_training_job(job(name, command="python -c pass"))
    with pytest.raises(ClientRequestException) as caught:
        admin_client.create_training_job(job(name, command="python -c pass"))
    assert caught.value.error_code == "ModelArts.2751"
    with pytest.raises(ClientRequestException) as caught:
        admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(limit=51)))
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2788")
    with pytest.raises(ClientRequestException) as caught:
        admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(sort_by="owner")))
    assert caught.value.error_code == "ModelArts.2790"


def test_one_node_per_job_without_ray(admin_client: Any, unique: Unique) -> None:
    """Jobs run as this machine's processes: node_count 2 is refused, saying why and what would run it (the
    Ray executor), and nothing is created; node_count 1 is the job it always was, with the one task worker-0."""
    if on_ray():
        pytest.skip("the session server runs jobs on Ray, where jobs may ask for several nodes (tests/ray)")
    name = unique("two-nodes")
    request = job(name, command="python -c pass")
    request.body.spec.resource.node_count = 2
    with pytest.raises(ClientRequestException) as caught:
        admin_client.create_training_job(request)
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2788")
    assert "node_count is 2" in caught.value.error_msg and "one node" in caught.value.error_msg
    assert "OPENARTS_EXECUTOR=ray" in caught.value.error_msg
    like = Filter(key="name", operator="like", value=[name])
    assert admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like]))).total == 0

    created = admin_client.create_training_job(job(unique("one-node"), command="python -c pass"))
    assert created.spec.resource.node_count == 1 and created.status.tasks == ["worker-0"]
    done = wait_for(admin_client, created.metadata.id)
    assert done.status.phase == "Completed", done.status.task_statuses
    assert [status.task for status in done.status.task_statuses] == ["worker-0"]
    tasks = admin_client.list_training_job_tasks(ListTrainingJobTasksRequest(training_job_id=created.metadata.id))
    assert [t.task for t in tasks.body] == ["worker-0"]
    with pytest.raises(ClientRequestException) as caught:  # a job on one node has no second task
        admin_client.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=created.metadata.id, task_id="worker-1")
        )
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2788")


def test_a_search_runs_on_one_node(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    """Whatever runs the jobs: each trial is one process, so a search asking for two nodes is refused."""
    name = unique("search-nodes")
    request = search_job(name, server, search_policy(samples=2))
    request.body.spec.resource.node_count = 2
    with pytest.raises(ClientRequestException) as caught:
        admin_client.create_training_job(request)
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.2788")
    assert "auto_search" in caught.value.error_msg and "one process on one node" in caught.value.error_msg
    like = Filter(key="name", operator="like", value=[name])
    assert admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like]))).total == 0


@pytest.mark.sdk_on_ray
def test_a_job_from_a_stored_algorithm_in_an_experiment(
    server: LiveServer, admin_client: Any, raw: Raw, unique: Unique
) -> None:
    """The algorithm declares code, parameters and channels; the job says where the data is."""
    name = unique("algo")
    bucket = "algo-bucket"
    script = (
        "import os, sys\n"
        "args = dict(a.lstrip('-').split('=', 1) for a in sys.argv[1:])\n"
        "rows = open(os.path.join(args['data'], 'rows.txt')).read()\n"
        "open(os.path.join(args['out'], 'result.txt'), 'w').write(args['greeting'] + ' ' + rows)\n"
    )
    put(server, f"obs://{bucket}/{name}/code/main.py", script)
    put(server, f"obs://{bucket}/{name}/data/rows.txt", "three rows")
    engine_id = admin_client.show_training_job_engines(ShowTrainingJobEnginesRequest()).items[0].engine_id
    algorithm = raw(
        "POST",
        "/v2/{project_id}/algorithms",
        {
            "metadata": {"name": name},
            "job_config": {
                "code_dir": f"/{bucket}/{name}/code/",
                "boot_file": f"/{bucket}/{name}/code/main.py",
                "engine": {"engine_id": engine_id},
                "parameters": [{"name": "greeting", "value": "hello"}],
                "inputs": [{"name": "data"}],
                "outputs": [{"name": "out"}],
            },
        },
    )
    assert algorithm.status_code == 201, algorithm.text
    experiment = raw("POST", "/v2/{project_id}/training-experiments", {"metadata": {"name": unique("exp")}})
    assert experiment.status_code == 201, experiment.text

    request = job(
        name,
        algorithm_id=algorithm.json()["metadata"]["id"],
        parameters={"greeting": "hi"},
        inputs={"data": f"obs://{bucket}/{name}/data/"},
        outputs={"out": f"obs://{bucket}/{name}/out/"},
    )
    request.body.metadata.training_experiment_reference = TrainingExperimentRequest(
        id=experiment.json()["metadata"]["id"]
    )
    created = admin_client.create_training_job(request)
    assert created.algorithm.id == algorithm.json()["metadata"]["id"]
    assert created.metadata.training_experiment_reference.serial_number == "1"
    done = wait_for(admin_client, created.metadata.id)
    assert done.status.phase == "Completed", done.status.task_statuses
    assert get(server, f"obs://{bucket}/{name}/out/result.txt") == "hi three rows"


@pytest.mark.sdk_on_ray
def test_batch_delete_and_deleting_a_running_job(server: LiveServer, admin_client: Any, unique: Unique) -> None:
    tag = unique("batch")
    finished = [admin_client.create_training_job(job(f"{tag}-{i}", command="python -c pass")) for i in range(2)]
    for created in finished:
        wait_for(admin_client, created.metadata.id)
    items = [BatchDeleteJobItem(kind="job", metadata={"id": created.metadata.id}) for created in finished]
    admin_client.batch_delete_training_job(BatchDeleteTrainingJobRequest(body=BatchDeleteJobsReq(jobs=items)))
    like = Filter(key="name", operator="like", value=[tag])
    assert admin_client.list_training_jobs(ListTrainingJobsRequest(body=JobSearches(filters=[like]))).total == 0

    script = "import time\nprint('running', flush=True)\ntime.sleep(60)\n"
    running = admin_client.create_training_job(python_job(unique("busy"), "batch-bucket", script, server))
    wait_for(admin_client, running.metadata.id, ("Running",))
    admin_client.delete_training_job(DeleteTrainingJobRequest(training_job_id=running.metadata.id))
    with pytest.raises(ClientRequestException) as caught:  # gone at once for the caller...
        wait_for(admin_client, running.metadata.id)
    assert caught.value.error_code == "ModelArts.2775"
    folder = server.data_dir / "jobs" / running.metadata.id
    deadline = time.monotonic() + 30
    while folder.exists() and time.monotonic() < deadline:  # ...and its processes and folder soon after
        time.sleep(0.1)
    assert not folder.exists()
