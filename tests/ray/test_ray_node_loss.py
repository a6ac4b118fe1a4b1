"""Losing a node fails a running job with a clear reason. It runs last: the cluster has one node left."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("ray")

from openarts.compute.ray_executor import RayExecutor, RayResources
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_executor import spec_for, wait_for_log, wait_outcome


@pytest.mark.skip(reason="flaky inside the full suite: after the worker is killed, Ray sometimes never fails the job")
def test_killing_the_worker_node_fails_the_job_with_a_reason(ray_cluster: RayCluster, tmp_path: Path) -> None:
    executor = RayExecutor(ray_cluster.address)
    script = "import os, time; print('rank', os.environ['RANK'], 'up', flush=True); time.sleep(300)"
    spec = spec_for(tmp_path, [sys.executable, "-c", script])
    handle = executor.launch(spec, RayResources(cpus=1, nodes=2))
    wait_for_log(spec, " up", count=2)
    ray_cluster.kill_worker()
    # Ray declares a node dead only after missing heartbeats, then fails the job: on a busy 2-core CI
    # machine that took more than a minute once.
    outcome = wait_outcome(executor, handle, spec, timeout_s=180.0)
    text = spec.log_path.read_text()
    assert outcome.lost or outcome.exit_code != 0, text
    # The reason is in the log, whose tail the controller puts in the job's failure message.
    assert "[openarts]" in text.split(" up", 2)[-1], text
    assert "lost" in text or "died" in text.lower(), text
    executor.close()
