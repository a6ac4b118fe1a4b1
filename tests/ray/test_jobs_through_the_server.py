"""The real server with ``OPENARTS_EXECUTOR=ray``: a training job submitted through the official SDK runs
on the Ray cluster, its log reaches the job's log endpoint, and its output is uploaded as with the local
executor (the nodes share the data folder: one machine). A job with node_count 2 runs a rank on each node."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkmodelarts.v1 import (
    ListTrainingJobTasksRequest,
    ShowTrainingJobDetailsRequest,
    ShowTrainingJobLogsPreviewRequest,
)

from tests.ray.conftest import RayCluster
from tests.support.databases import fresh_database
from tests.support.executors import ray_server_env
from tests.support.server import LiveServer
from tests.training.jobs_support import get, python_job, wait_for

pytest.importorskip("ray")


@pytest.fixture
def ray_server(ray_cluster: RayCluster, backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    if backend != "sqlite":
        pytest.skip("the executor, not the database, is under test here")
    with fresh_database(backend, tmp_path) as url:
        env = {**ray_server_env(ray_cluster.address), "OPENARTS_COMPUTE_CPUS": "2"}
        live = LiveServer(tmp_path / "data", url, env=env)
        live.start()
        try:
            yield live
        finally:
            live.stop()


@pytest.mark.timeout(180)
def test_a_training_job_runs_on_the_ray_cluster(ray_server: LiveServer) -> None:
    client = ray_server.client()
    script = (
        "import argparse, os\n"
        "parser = argparse.ArgumentParser(); parser.add_argument('--train_url')\n"
        "args, _ = parser.parse_known_args()\n"
        "print('hello from ray')\n"
        "open(os.path.join(args.train_url, 'result.txt'), 'w').write('done')\n"
    )
    request = python_job("on-ray", "raybucket", script, ray_server, outputs={"train_url": "obs://raybucket/out/"})
    job_id = client.create_training_job(request).metadata.id
    ended = wait_for(client, job_id, timeout=150)
    assert ended.status.phase == "Completed", ended.status
    logs = client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
    )
    assert "hello from ray" in logs.content
    assert get(ray_server, "obs://raybucket/out/result.txt") == "done"


RANKS = (
    "import os\n"
    "e = os.environ\n"
    "print('rank=%s world=%s master=%s:%s' % (e['RANK'], e['WORLD_SIZE'], e['MASTER_ADDR'], e['MASTER_PORT']))\n"
)


@pytest.mark.timeout(180)
def test_a_job_on_two_nodes_runs_one_rank_on_each(ray_server: LiveServer) -> None:
    """node_count 2: one process on each node of the cluster, each with its rank, the world size and one
    rendezvous address; both ranks' output in the one log, whichever task's log is asked for; the job shows
    two tasks. Each rank asked for the flavor's CPUs and memory on its node."""
    client = ray_server.client()
    request = python_job("two-nodes", "raybucket", RANKS, ray_server)
    request.body.spec.resource.node_count = 2
    created = client.create_training_job(request)
    assert created.spec.resource.node_count == 2
    assert created.status.tasks == ["worker-0", "worker-1"]
    job_id = created.metadata.id
    ended = wait_for(client, job_id, timeout=150)
    logs = {
        task: client.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id=task)
        ).content
        for task in ("worker-0", "worker-1")
    }
    text = logs["worker-0"]
    assert ended.status.phase == "Completed", (ended.status, text)
    assert logs["worker-1"] == text  # one log for the job: every rank's output
    assert "rank=0 world=2 master=" in text and "rank=1 world=2 master=" in text, text
    masters = {line.split("master=")[1].split()[0] for line in text.splitlines() if "world=2 master=" in line}
    assert len(masters) == 1, text  # both ranks were told the same rendezvous address
    assert f"waiting for 2 nodes with {{'CPU': 2.0, 'memory': {8 * 1024**3}.0}} each" in text, text

    shown = client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
    assert shown.spec.resource.node_count == 2
    assert shown.status.tasks == ["worker-0", "worker-1"]
    assert [(s.task, s.exit_code) for s in shown.status.task_statuses] == [("worker-0", 0), ("worker-1", 0)]
    tasks = client.list_training_job_tasks(ListTrainingJobTasksRequest(training_job_id=job_id))
    assert [t.task for t in tasks.body] == ["worker-0", "worker-1"]
