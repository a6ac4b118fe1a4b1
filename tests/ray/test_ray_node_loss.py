"""Losing a node fails a running job with a clear reason.

The test kills a node, so it runs on a two-node cluster of its own: the session's cluster keeps both
nodes for the tests after it, whatever their order.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

from openarts.compute.ray_executor import RayExecutor, RayResources
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_executor import spec_for, wait_for_log, wait_outcome
from tests.support.executors import started_ray_cluster

# The head declares the node dead after 3 missed health checks half a second apart (running_cluster), and
# the job's driver then fails the lost rank: seconds, or a minute on a busy 2-core CI machine.
LOSS_TIMEOUT_S = 120.0


@pytest.fixture
def doomed_cluster() -> Iterator[RayCluster]:
    with started_ray_cluster(nodes=2) as cluster:
        yield cluster


@pytest.mark.timeout(300)
def test_killing_the_worker_node_fails_the_job_with_a_reason(doomed_cluster: RayCluster, tmp_path: Path) -> None:
    executor = RayExecutor(doomed_cluster.address)
    # One word holding a digit: Ray's driver deduplicates the lines of different workers that differ only
    # in words with digits ("rank 1 up" after "rank 0 up" waits for more output), not a line of one word.
    script = "import os, time; print(f\"rank{os.environ['RANK']}-up\", flush=True); time.sleep(300)"
    spec = spec_for(tmp_path, [sys.executable, "-c", script])
    handle = executor.launch(spec, RayResources(cpus=1, nodes=2))
    # Both ranks running, each by name (Ray's own "Runtime env is setting up." holds " up"). A rank that
    # has not started when its node goes is not failed by Ray: it waits for a node to take its place, as a
    # job waits for enough nodes, and the job would not end.
    wait_for_log(spec, "rank0-up")
    wait_for_log(spec, "rank1-up")
    killed = time.monotonic()
    doomed_cluster.kill_worker()
    assert not doomed_cluster.worker_processes(), "processes of the killed node live on"
    outcome = wait_outcome(executor, handle, spec, timeout_s=LOSS_TIMEOUT_S)
    print(f"the job ended {time.monotonic() - killed:.1f} s after its worker node was killed")
    text = spec.log_path.read_text()
    assert outcome.lost or outcome.exit_code != 0, text
    # The reason is in the log, whose tail the controller puts in the job's failure message.
    reason = text[max(text.index("rank0-up"), text.index("rank1-up")) :]
    assert "[openarts] the job failed: rank" in reason and "was lost" in reason, text
    executor.close()
