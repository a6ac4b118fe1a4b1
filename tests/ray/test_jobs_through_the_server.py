"""The real server with ``OPENARTS_EXECUTOR=ray``: a training job submitted through the official SDK runs
on the Ray cluster, its log reaches the job's log endpoint, and its output is uploaded as with the local
executor (the nodes share the data folder: one machine)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from huaweicloudsdkmodelarts.v1 import ShowTrainingJobLogsPreviewRequest

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
