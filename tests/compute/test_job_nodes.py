"""What a job asks per node and on how many nodes: from its plan to the launch spec, from the spec to the
Ray cluster's resources, and what it takes from the capacity pool. No cluster here: tests/ray runs a job
on two nodes for real (tests/ray/test_jobs_through_the_server.py)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from openarts.compute.capacity import Demand
from openarts.compute.executor import LaunchSpec
from openarts.compute.flavors import Flavor
from openarts.compute.local import LocalExecutor
from openarts.compute.ray_executor import RayResources, ray_resources
from openarts.training.jobs.service import job_demand
from openarts.training.jobs.workdir import JobDir, launch_spec


def _spec(tmp_path: Path, **fields: Any) -> LaunchSpec:
    return LaunchSpec(
        argv=[sys.executable, "-c", "pass"],
        cwd=tmp_path,
        env={},
        log_path=tmp_path / "logs" / "job.log",
        exit_path=tmp_path / "exit",
        **fields,
    )


def test_the_cluster_is_asked_for_the_flavor_on_each_node(tmp_path: Path) -> None:
    spec = _spec(tmp_path, cpus=8, memory_limit_mb=32 * 1024, gpus=[0, 1], nodes=2)
    assert ray_resources(spec) == RayResources(cpus=8.0, memory_mb=32 * 1024, gpus=2, nodes=2)


def test_a_spec_that_names_no_cpus_asks_for_one_on_one_node(tmp_path: Path) -> None:
    """As every launch did before specs carried their flavor's CPUs: a search's trials, services."""
    assert ray_resources(_spec(tmp_path)) == RayResources(cpus=1.0, memory_mb=None, gpus=0, nodes=1)
    assert ray_resources(_spec(tmp_path, memory_limit_mb=512)) == RayResources(cpus=1.0, memory_mb=512)


def test_the_local_executor_refuses_several_nodes(tmp_path: Path) -> None:
    executor = LocalExecutor()
    try:
        with pytest.raises(ValueError, match="one node, not 2"):
            executor.launch(_spec(tmp_path, nodes=2))
    finally:
        executor.close()
    assert not (tmp_path / "logs").exists()  # refused before anything was started or made


PLAN: dict[str, Any] = {
    "python": sys.executable,
    "command": ["python", "train.py"],
    "parameters": [],
    "inputs": [],
    "outputs": [],
    "environments": {},
    "cpus": 4,
    "memory_mb": 16 * 1024,
    "gpus": [],
    "node_count": 2,
}


def test_a_plan_launches_its_flavor_on_its_nodes(tmp_path: Path) -> None:
    spec = launch_spec(PLAN, JobDir(tmp_path / "job"))
    assert (spec.cpus, spec.nodes, spec.memory_limit_mb) == (4, 2, 16 * 1024)


def test_search_trials_and_older_plans_keep_one_cpu_on_one_node(tmp_path: Path) -> None:
    # A trial is one process of one CPU: the search runs as many at once as the flavor has cores.
    trial = launch_spec({**PLAN, "node_count": 1, "search": {"parallelism": 4}}, JobDir(tmp_path / "search"))
    assert (trial.cpus, trial.nodes) == (None, 1)
    # A job stored before plans recorded CPUs and nodes runs as it would have then.
    older = {key: value for key, value in PLAN.items() if key not in ("cpus", "node_count")}
    spec = launch_spec(older, JobDir(tmp_path / "older"))
    assert (spec.cpus, spec.nodes) == (None, 1)


def test_a_job_on_several_nodes_takes_its_flavor_once_per_node() -> None:
    flavor = Flavor("modelarts.vm.gpu.2u", "GPU", "GPU", cpu_cores=16, memory_gb=64, gpu_count=2)
    assert flavor.demand("job") == Demand("job", 16.0, 64.0, 2)
    assert flavor.demand("job", nodes=3) == Demand("job", 48.0, 192.0, 6)
    # The row holds the whole job's CPUs and memory (see service.create); the plan one node's GPUs.
    whole = flavor.demand("job", nodes=3)
    launch = {"gpus": [0, 1], "node_count": 3}
    assert job_demand("job", whole.cpus, whole.memory_gb, launch) == Demand("job", 48.0, 192.0, 6)
    assert job_demand("old", 2.0, 8.0, {"gpus": [0]}) == Demand("old", 2.0, 8.0, 1)  # no node_count: one node
