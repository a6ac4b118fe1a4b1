"""The tuner driven in process by the training controller, with real trial processes.

What is checked is the determinism contract, against the pure ``suggest``: trial ``i`` is proposed from
exactly the results of trials ``0 .. i-P``, oldest first, whether the tuner kept its state in memory the
whole time or had to read it back from the rows (as after a restart).
"""

from __future__ import annotations

import dataclasses
import time

from sqlalchemy import select

from openarts.autosearch import algorithms
from openarts.autosearch.tables import TERMINATED, Trial
from openarts.autosearch.tuner import Search, Tuner
from openarts.compute.executor import LaunchSpec, ProcessHandle
from openarts.compute.local import LocalExecutor
from openarts.config import Settings
from openarts.core.identity.service import principal_for_access_key
from openarts.core.services import Services
from openarts.storage.store import ObjectStore
from openarts.training.jobs import service
from openarts.training.jobs.controller import JobController
from openarts.training.jobs.schemas import CreateJob
from openarts.training.jobs.tables import TrainingJob
from tests.conftest import InProcess

TRIAL = "import sys; x = float(sys.argv[1].split('=')[1]); print(f'loss={(x - 1.5) ** 2:.6f}')"
SAMPLES = 10


def _search_job(inprocess: InProcess, settings: Settings, store: ObjectStore) -> str:
    found = principal_for_access_key(inprocess.db, inprocess.admin["access_key"])
    assert found is not None
    body = CreateJob.model_validate(
        {
            "metadata": {"name": "tuned"},
            "algorithm": {
                "command": f'python -c "{TRIAL}"',
                "policies": {
                    "auto_search": {
                        "reward_attrs": [{"name": "loss", "mode": "min", "regex": r"loss=([0-9.eE+-]+)"}],
                        "search_params": [
                            {"name": "x", "param_type": "continuous", "lower_bound": "-5", "upper_bound": "5"}
                        ],
                        "algo_configs": [
                            {"name": "anneal_search", "params": [{"key": "num_samples", "value": str(SAMPLES)}]}
                        ],
                    }
                },
            },
            "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.2u"}},
        }
    )
    with inprocess.db.write() as session:
        job = service.create(session, settings, store, found[0], body, 0)
    return str(job["metadata"]["id"])


def _trials(inprocess: InProcess, job_id: str) -> list[Trial]:
    with inprocess.db.read() as session:
        return list(session.scalars(select(Trial).where(Trial.job_id == job_id).order_by(Trial.trial_index)))


def _phase(inprocess: InProcess, job_id: str) -> str:
    with inprocess.db.read() as session:
        return session.get_one(TrainingJob, job_id).phase


def test_trials_see_exactly_the_trials_p_before_them_across_a_forgetful_tuner(inprocess: InProcess) -> None:
    settings = dataclasses.replace(inprocess.settings, compute_cpus=2.0, compute_memory_gb=32.0)  # P = 2
    store = ObjectStore(settings)
    services = Services(settings, inprocess.db, inprocess.clock)
    executor = LocalExecutor()
    controller = JobController(services, executor, store)
    job_id = _search_job(inprocess, settings, store)
    deadline = time.monotonic() + 60
    forgot = False
    while _phase(inprocess, job_id) not in ("Completed", "Failed", "Terminated"):
        assert time.monotonic() < deadline
        controller.reconcile()
        if not forgot and sum(t.status == TERMINATED for t in _trials(inprocess, job_id)) >= 4:
            controller.tuner = Tuner(services, executor)  # as after a restart: state read back from rows
            forgot = True
        time.sleep(0.01)
    executor.close()
    assert forgot
    assert _phase(inprocess, job_id) == "Completed"

    with inprocess.db.read() as session:
        search = Search.from_plan(session.get_one(TrainingJob, job_id).launch)
    trials = _trials(inprocess, job_id)
    assert [t.trial_index for t in trials] == list(range(SAMPLES))
    assert {t.status for t in trials} == {TERMINATED}
    assert all(t.pid is not None and t.process_start_time is not None for t in trials)
    algo = search.algos[0]
    for index, trial in enumerate(trials):
        seen = [
            algorithms.Observation({"x": t.config["x"]}, float(t.rewards["loss"]))
            for t in trials[: max(0, index - search.parallelism + 1)]
        ]
        assert search.parallelism == 2
        assert {"x": trial.config["x"]} == algorithms.suggest(algo, search.space, index, seen), index


class _FailsOnce(LocalExecutor):
    """Cannot start the third process it is asked for (a full disk, a launcher gone mid-request)."""

    def __init__(self) -> None:
        super().__init__()
        self.launches = 0

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        self.launches += 1
        if self.launches == 3:
            raise OSError("no space left on device")
        return super().launch(spec)


def test_a_trial_that_cannot_start_fails_alone(inprocess: InProcess) -> None:
    settings = dataclasses.replace(inprocess.settings, compute_cpus=2.0, compute_memory_gb=32.0)
    store = ObjectStore(settings)
    executor = _FailsOnce()
    controller = JobController(Services(settings, inprocess.db, inprocess.clock), executor, store)
    job_id = _search_job(inprocess, settings, store)
    deadline = time.monotonic() + 60
    while _phase(inprocess, job_id) not in ("Completed", "Failed", "Terminated"):
        assert time.monotonic() < deadline
        controller.reconcile()
        time.sleep(0.01)
    executor.close()
    assert _phase(inprocess, job_id) == "Completed"
    trials = _trials(inprocess, job_id)
    assert [t.trial_index for t in trials] == list(range(SAMPLES))  # num_samples, none started twice
    assert executor.launches == SAMPLES
    failed = [t for t in trials if t.status != TERMINATED]
    assert [(t.trial_index, t.status, t.pid) for t in failed] == [(2, "ERROR", None)]
    assert "could not be started: no space left on device" in failed[0].message
