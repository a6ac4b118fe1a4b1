"""Service instances on the Ray cluster: with ``OPENARTS_EXECUTOR=ray`` (and the data folder shared, where the
model packages live) each instance is a Ray job on a node. It takes a free port there and logs it; the
controller reads the port from the log and the node's address from Ray, and the gateway forwards calls
to that address. Stop and delete end the Ray job."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ray.conftest import RayCluster
from tests.services.support import (
    Api,
    delete_all_services,
    deploy,
    entry,
    kill_leftovers,
    published_model,
    wait_gone,
    wait_service,
    write_custom_package,
)
from tests.support.databases import fresh_database
from tests.support.executors import ray_server_env
from tests.support.server import own_server

pytest.importorskip("ray")

SERVICES = "/v1/{project_id}/services"


@pytest.fixture
def ray_api(ray_cluster: RayCluster, backend: str, tmp_path: Path) -> Iterator[Api]:
    if backend != "sqlite":
        pytest.skip("the executor, not the database, is under test here")
    env = ray_server_env(ray_cluster.address)
    with (
        fresh_database(backend, tmp_path) as url,
        own_server(
            url,
            tmp_path,
            cpus=2,
            memory_gb=16,
            env=env,
            clean_up=lambda live: delete_all_services(Api(live)),
            kill_leftovers=kill_leftovers,
        ) as live,
    ):
        yield Api(live)


def _ray_jobs(cluster: RayCluster) -> dict[str, str]:
    from ray.job_submission import JobSubmissionClient

    jobs: list[Any] = JobSubmissionClient(cluster.address).list_jobs()
    return {job.submission_id: str(job.status) for job in jobs if (job.submission_id or "").startswith("openarts-")}


def _wait_stopped(cluster: RayCluster, submission_ids: set[str], timeout_s: float = 60.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        states = {sid: state for sid, state in _ray_jobs(cluster).items() if sid in submission_ids}
        if all(state in ("STOPPED", "FAILED", "SUCCEEDED") for state in states.values()) or time.monotonic() > deadline:
            return states
        time.sleep(0.5)


@pytest.mark.timeout(240)
def test_an_instance_runs_as_a_ray_job_and_is_called_through_the_gateway(ray_api: Api, ray_cluster: RayCluster) -> None:
    tag = uuid.uuid4().hex[:8]
    before = set(_ray_jobs(ray_cluster))
    model_id = published_model(ray_api, f"m-{tag}", write_custom_package(ray_api.server, "raysvc", tag, "on-ray"))
    service_id = deploy(ray_api, f"svc-{tag}", [entry(model_id)])
    shown = wait_service(ray_api, service_id, "running", "failed", timeout=180.0)
    assert shown["status"] == "running", shown.get("error_msg")
    started = {sid: state for sid, state in _ray_jobs(ray_cluster).items() if sid not in before}
    assert list(started.values()) == ["RUNNING"], started  # the one instance is one Ray job
    answer = ray_api.call("POST", shown["access_address"], {"values": [1]})
    assert answer.status_code == 200 and answer.json()["version"] == "on-ray", answer.text
    # Stop ends the Ray job; the calls are refused from then on.
    ray_api.ok("PUT", f"{SERVICES}/{service_id}", {"status": "stopped"})
    assert wait_service(ray_api, service_id, "stopped", timeout=60.0)["status"] == "stopped"
    assert set(_wait_stopped(ray_cluster, set(started)).values()) <= {"STOPPED", "FAILED"}
    refused = ray_api.call("POST", shown["access_address"], {"values": [1]})
    assert refused.status_code == 400 and refused.json()["error_code"] == "ModelArts.4203"
    ray_api.ok("DELETE", f"{SERVICES}/{service_id}")
    wait_gone(ray_api, service_id)
