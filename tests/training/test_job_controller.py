"""The training controller driven step by step in process, with a clock the test moves."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import pytest

from openarts.compute import claims
from openarts.compute.capacity import Demand
from openarts.compute.executor import LaunchSpec, Outcome, ProcessHandle, Usage
from openarts.compute.local import LocalExecutor
from openarts.core.errors import ApiError
from openarts.core.identity.service import principal_for_access_key
from openarts.core.services import Services
from openarts.storage.store import ObjectStore
from openarts.training.jobs import service
from openarts.training.jobs.controller import JobController
from openarts.training.jobs.schemas import CreateJob
from openarts.training.jobs.tables import JobEvent, TrainingJob
from tests.conftest import InProcess


def _phase(app: InProcess, job_id: str) -> str:
    with app.db.read() as session:
        return session.get_one(TrainingJob, job_id).phase


def _settle(controller: JobController, app: InProcess, job_id: str, phases: tuple[str, ...]) -> str:
    deadline = time.monotonic() + 30
    while (phase := _phase(app, job_id)) not in phases:
        assert time.monotonic() < deadline, f"still {phase}"
        controller.reconcile()
        time.sleep(0.05)
    return phase


def test_auto_stop_ends_a_job_that_runs_too_long(inprocess: InProcess) -> None:
    services = Services(inprocess.settings, inprocess.db, inprocess.clock)
    store = ObjectStore(inprocess.settings)
    controller = JobController(services, LocalExecutor(), store)
    found = principal_for_access_key(inprocess.db, inprocess.admin["access_key"])
    assert found is not None
    body = CreateJob.model_validate(
        {
            "metadata": {"name": "sleeper"},
            "algorithm": {"command": "python -c 'import time; time.sleep(120)'"},
            "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.2u"}, "auto_stop": {"duration": 1}},
        }
    )
    now_ms = int(inprocess.clock.now() * 1000)
    with inprocess.db.write() as session:
        job_id = service.create(session, inprocess.settings, store, found[0], body, now_ms)["metadata"]["id"]

    assert _settle(controller, inprocess, job_id, ("Running",)) == "Running"
    inprocess.clock.advance(3599)
    controller.reconcile()
    assert _phase(inprocess, job_id) == "Running"  # not a second early
    inprocess.clock.advance(2)
    assert _settle(controller, inprocess, job_id, ("Terminated",)) == "Terminated"
    with inprocess.db.read() as session:
        job = session.get_one(TrainingJob, job_id)
        messages = [e.message for e in session.query(JobEvent).filter(JobEvent.job_id == job_id)]
    assert "auto_stop" in job.message
    assert any("auto_stop" in m for m in messages)


def test_oversized_flavors_run_alone_or_are_refused_when_strict(inprocess: InProcess) -> None:
    found = principal_for_access_key(inprocess.db, inprocess.admin["access_key"])
    assert found is not None
    body = CreateJob.model_validate(
        {
            "metadata": {"name": "big"},
            "algorithm": {"command": "python -c pass"},
            "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.8u"}},
        }
    )
    small = dataclasses.replace(inprocess.settings, compute_cpus=1.0, compute_memory_gb=4.0)
    store = ObjectStore(small)
    with inprocess.db.write() as session, pytest.raises(ApiError) as caught:
        service.create(session, dataclasses.replace(small, strict_flavors=True), store, found[0], body, 0)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.2840")

    with inprocess.db.write() as session:
        job_id = service.create(session, small, store, found[0], body, 0)["metadata"]["id"]
    controller = JobController(Services(small, inprocess.db, inprocess.clock), LocalExecutor(), store)
    assert _settle(controller, inprocess, job_id, ("Completed", "Failed")) == "Completed"


class _Recording(LocalExecutor):
    """Records what it is asked to launch and starts nothing, a job forever running: admission is under
    test, not a cluster (tests/ray runs a job on two nodes for real)."""

    def __init__(self) -> None:
        super().__init__()
        self.launched: list[LaunchSpec] = []

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        self.launched.append(spec)
        return ProcessHandle(pid=len(self.launched), start_time=0.0)

    def outcome(self, handle: ProcessHandle, exit_path: Path) -> Outcome | None:
        return None

    def usage(self, handle: ProcessHandle) -> Usage:
        return Usage(cpu_percent=0.0, memory_mb=0.0)


def test_a_job_on_two_nodes_is_admitted_for_its_flavor_twice(inprocess: InProcess) -> None:
    """On the Ray executor a 2u job on two nodes holds 4 CPUs and 16 GB of the pool: in a pool of exactly
    that, it starts, the 2u job queued behind it waits, and it is launched with the flavor per node."""
    on_ray = dataclasses.replace(
        inprocess.settings, executor="ray", ray_address=None, compute_cpus=4.0, compute_memory_gb=16.0
    )
    store = ObjectStore(on_ray)
    found = principal_for_access_key(inprocess.db, inprocess.admin["access_key"])
    assert found is not None

    def create(name: str, nodes: int) -> dict[str, Any]:
        body = CreateJob.model_validate(
            {
                "metadata": {"name": name},
                "algorithm": {"command": "python train.py"},
                "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.2u", "node_count": nodes}},
            }
        )
        with inprocess.db.write() as session:
            return service.create(session, on_ray, store, found[0], body, 0)

    wide = create("wide", 2)
    assert wide["spec"]["resource"]["node_count"] == 2
    assert wide["status"]["tasks"] == ["worker-0", "worker-1"]
    narrow = create("narrow", 1)
    assert narrow["status"]["tasks"] == ["worker-0"]
    with inprocess.db.read() as session:
        row = session.get_one(TrainingJob, wide["metadata"]["id"])
        assert (row.cpus, row.memory_gb, row.launch["cpus"], row.launch["node_count"]) == (4.0, 16.0, 2, 2)

    executor = _Recording()
    controller = JobController(Services(on_ray, inprocess.db, inprocess.clock), executor, store)
    assert _settle(controller, inprocess, wide["metadata"]["id"], ("Running",)) == "Running"
    for _ in range(3):
        controller.reconcile()
    assert _phase(inprocess, narrow["metadata"]["id"]) == "Pending"  # the pool is full
    [spec] = executor.launched
    assert (spec.cpus, spec.nodes, spec.memory_limit_mb) == (2, 2, 8 * 1024)
    with inprocess.db.read() as session:
        assert claims.held(session) == [Demand(wide["metadata"]["id"], 4.0, 16.0, 0)]
    executor.close()


def test_several_nodes_only_on_ray_and_never_for_a_search(inprocess: InProcess) -> None:
    found = principal_for_access_key(inprocess.db, inprocess.admin["access_key"])
    assert found is not None
    store = ObjectStore(inprocess.settings)
    body = CreateJob.model_validate(
        {
            "metadata": {"name": "wide"},
            "algorithm": {"command": "python train.py"},
            "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.2u", "node_count": 3}},
        }
    )
    with inprocess.db.write() as session, pytest.raises(ApiError) as caught:
        service.create(session, inprocess.settings, store, found[0], body, 0)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.2788")
    assert "node_count is 3" in caught.value.message and "OPENARTS_EXECUTOR=ray" in caught.value.message

    search = body.model_copy(deep=True)
    search.algorithm.policies = {"auto_search": {"search_params": [], "reward_attrs": [], "algo_configs": []}}
    on_ray = dataclasses.replace(inprocess.settings, executor="ray", ray_address=None)
    with inprocess.db.write() as session, pytest.raises(ApiError) as caught:
        service.create(session, on_ray, store, found[0], search, 0)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.2788")
    assert "one process on one node" in caught.value.message
