"""The training controller driven step by step in process, with a clock the test moves."""

from __future__ import annotations

import time

from openarts.compute.local import LocalExecutor
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
    import dataclasses

    import pytest

    from openarts.core.errors import ApiError

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
