"""Service instances on the Ray cluster: with ``OPENARTS_EXECUTOR=ray`` each instance is a Ray job on a node.
It takes a free port there and writes it down; the controller reads the port and the node's address from
Ray, and the gateway forwards calls to that address. Stop and delete end the Ray job.

Two ways for the package and the port (``openarts/services/placement.py``): a data folder every node
shares, or, without one, the S3-compatible store (moto's server here): the server copies the package to
its private directory, the node downloads it into the instance folder and uploads the port file as soon
as the model server has written it. Cheap tests of the pieces first, then each way through the real
server, cluster and gateway. On one machine both "nodes" see the server's folder, so what is checked is
that the instance read the package the node staged and that the port came through the store.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

pytest.importorskip("ray")

from openarts.compute import ray_entry
from openarts.compute.executor import LaunchSpec
from openarts.compute.local import LocalExecutor
from openarts.compute.ray_executor import RayExecutor, validate_ray_settings
from openarts.config import Settings
from openarts.core.services import Services
from openarts.models.service import package_dir
from openarts.services import placement
from openarts.services.controller import make_controller
from openarts.services.placement import SharedFiles, StoredFiles
from openarts.services.tables import ServiceInstance
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_staging import KEYS, node_job, put, read, s3_settings
from tests.services.support import (
    Api,
    delete_all_services,
    deploy,
    entry,
    instance_processes,
    kill_leftovers,
    published_model,
    wait_gone,
    wait_service,
    write_custom_package,
)
from tests.support.databases import fresh_database
from tests.support.executors import ray_server_env
from tests.support.server import own_server

SERVICES = "/v1/{project_id}/services"
RAY = {"OPENARTS_EXECUTOR": "ray", "OPENARTS_RAY_ADDRESS": "http://h:8265"}
PRIVATE = "openarts-private"  # the private directory's key in each test's bucket


@pytest.fixture
def bucket(moto_s3: str, tmp_path: Path) -> Iterator[tuple[ObjectStore, str]]:
    """A fresh bucket in the session's S3 store, and a store on it (the server's view)."""
    store = ObjectStore(s3_settings(moto_s3, tmp_path / "view"))
    name = f"b-{uuid.uuid4().hex[:12]}"
    store._fs.mkdir(name)  # buckets are made outside the store on S3
    yield store, name


# --- the settings, and which way make_controller chooses ----------------------------------------------------


def _controller_for(settings: Settings) -> Any:
    nothing: Any = None  # the controller is only built here: no database, no clock
    return make_controller(Services(settings, nothing, nothing))


def test_the_private_directory_decides_where_instances_of_an_unshared_cluster_run(tmp_path: Path) -> None:
    endpoint = "http://s3.example:9000"
    alone = _controller_for(s3_settings(endpoint, tmp_path, **RAY))
    assert isinstance(alone.executor, LocalExecutor) and isinstance(alone.files, SharedFiles)  # as before
    private = s3_settings(endpoint, tmp_path, OPENARTS_OBS_PRIVATE_URL="/pkgs/openarts", **RAY)
    validate_ray_settings(private)
    staged = _controller_for(private)
    assert isinstance(staged.executor, RayExecutor) and staged.executor.stages_remotely
    assert isinstance(staged.files, StoredFiles) and staged.files.root.url() == "obs://pkgs/openarts/"
    shared = _controller_for(s3_settings(endpoint, tmp_path, OPENARTS_RAY_SHARED_FS="1", **RAY))
    assert isinstance(shared.executor, RayExecutor) and isinstance(shared.files, SharedFiles)
    local = _controller_for(s3_settings(endpoint, tmp_path, OPENARTS_OBS_PRIVATE_URL="/pkgs/"))
    assert isinstance(local.executor, LocalExecutor)  # the setting means nothing to a local server
    for wrong in ("pkgs", "obs://Bad_Bucket/x/", "/pkgs/../x/"):
        settings = s3_settings(endpoint, tmp_path, OPENARTS_OBS_PRIVATE_URL=wrong, **RAY)
        with pytest.raises(ValueError, match="OPENARTS_OBS_PRIVATE_URL"):
            validate_ray_settings(settings)


# --- the pieces: the server's copy, the node's staging and report -----------------------------------------


def _write_package(settings: Settings, model_id: str, version: str) -> Path:
    folder = package_dir(settings, model_id)
    (folder / "sub").mkdir(parents=True, exist_ok=True)
    (folder / "version.txt").write_text(version)
    (folder / "sub" / "helper.py").write_text("VALUE = 1\n")
    return folder


def test_the_server_copies_a_package_once_and_reads_the_port_reported_for_the_current_launch(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, name = bucket
    monkeypatch.setattr(placement, "REPORT_POLL_S", 0.0)  # every look asks the store
    settings = s3_settings(moto_s3, tmp_path / "server")
    files = StoredFiles(settings, store, parse_obs_url(f"obs://{name}/{PRIVATE}/"))
    package = _write_package(settings, "m1", "first")
    instance = ServiceInstance(id="svc1-i1", service_id="svc1", model_id="m1", config_index=0)
    folder = tmp_path / "server" / "services" / "svc1" / "svc1-i1"
    base = f"obs://{name}/{PRIVATE}/services/svc1"
    put(store, f"{base}/instances/svc1-i1/port-999", "1111")  # a previous life's report

    model_dir, staging = files.prepare(instance, 1000, folder)
    assert model_dir == folder / "model" and staging is not None and staging.root == folder
    assert [(d.name, d.url, d.path) for d in staging.downloads] == [("model", f"{base}/models/m1/", "model")]
    assert [(r.name, r.url, r.path) for r in staging.reports] == [
        ("port", f"{base}/instances/svc1-i1/port-1000", "port")
    ]
    assert read(store, f"{base}/models/m1/version.txt") == "first"
    assert read(store, f"{base}/models/m1/sub/helper.py") == "VALUE = 1\n"
    assert not store.exists(parse_obs_url(f"{base}/instances/svc1-i1/port-999"))  # never taken for the new one
    # Copied once per service and model: the next launch finds the whole copy (a package never changes).
    (package / "version.txt").write_text("changed")
    files.prepare(instance, 2000, folder)
    assert read(store, f"{base}/models/m1/version.txt") == "first"

    instance.launched_at = 2000
    assert files.reported_port(instance, folder) is None  # not reported yet
    put(store, f"{base}/instances/svc1-i1/port-1000", "2222")  # the previous launch's, late
    assert files.reported_port(instance, folder) is None
    put(store, f"{base}/instances/svc1-i1/port-2000", "4321")
    assert files.reported_port(instance, folder) == 4321

    files.forget("svc1")
    assert not store.exists(parse_obs_url(f"{base}/"))


NODE_SCRIPT = """
import os, sys, time
import s3fs
version = open(os.path.join("model", "version.txt")).read()
open("port.partial", "w").write("5678")
os.replace("port.partial", "port")  # as the model server writes it
fs = s3fs.S3FileSystem(key="testing", secret="testing", client_kwargs={"endpoint_url": os.environ["S3"]})
deadline = time.monotonic() + 20
while not fs.exists(os.environ["REPORT"]):  # the report reaches the store while the command runs
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.1)
print("served", version, flush=True)
"""


def test_a_node_stages_the_package_and_reports_the_port_while_the_instance_runs(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store, name = bucket
    settings = s3_settings(moto_s3, tmp_path / "server")
    files = StoredFiles(settings, store, parse_obs_url(f"obs://{name}/{PRIVATE}/"))
    _write_package(settings, "m2", "staged")
    instance = ServiceInstance(id="svc2-i1", service_id="svc2", model_id="m2", config_index=0)
    folder = tmp_path / "node" / "services" / "svc2" / "svc2-i1"  # the node's copy: nothing there yet
    model_dir, staging = files.prepare(instance, 1000, folder)
    report = f"obs://{name}/{PRIVATE}/services/svc2/instances/svc2-i1/port-1000"
    env = {"S3": moto_s3, "REPORT": report.removeprefix("obs://")}
    spec = LaunchSpec(
        argv=[sys.executable, "-c", NODE_SCRIPT],
        cwd=folder,
        env=env,
        log_path=folder / "instance.log",
        exit_path=folder / "exit-code",
        staging=staging,
    )

    assert ray_entry.run_staged(node_job(spec, moto_s3), {}) == 0
    out = capfd.readouterr().out
    assert "served staged" in out and "[openarts] staged the job's folder on node" in out
    assert read(store, report) == "5678"
    # The node's copy is gone (the package and the port file); only the two lock files stay.
    assert not model_dir.exists() and sorted(p.name for p in folder.iterdir()) == [
        ray_entry.STAGING_LOCK,
        ray_entry.STAGING_USERS,
    ]


@contextlib.contextmanager
def _api_on_the_cluster(backend: str, tmp_path: Path, env: dict[str, str]) -> Iterator[Api]:
    """A live server of its own with ``env``, its services deleted and leftovers killed at the end."""
    if backend != "sqlite":
        pytest.skip("the executor, not the database, is under test here")
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


@pytest.fixture
def ray_api(ray_cluster: RayCluster, backend: str, tmp_path: Path) -> Iterator[Api]:
    with _api_on_the_cluster(backend, tmp_path, ray_server_env(ray_cluster.address)) as api:
        yield api


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


# --- without a shared folder: the package and the port through the store ------------------------------------


@pytest.fixture
def staged_api(
    ray_cluster: RayCluster, bucket: tuple[ObjectStore, str], backend: str, tmp_path: Path, moto_s3: str
) -> Iterator[Api]:
    """A live server whose instances run on the cluster without a shared folder, its private directory in
    the test's bucket."""
    env = {
        **ray_server_env(ray_cluster.address, shared_fs=False),
        "OPENARTS_OBS_ENDPOINT": moto_s3,
        **KEYS,
        "OPENARTS_OBS_PRIVATE_URL": f"obs://{bucket[1]}/{PRIVATE}/",
    }
    with _api_on_the_cluster(backend, tmp_path, env) as api:
        yield api


def _listening_ports(process: psutil.Process) -> set[int]:
    return {c.laddr.port for c in process.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}


@pytest.mark.timeout(240)
def test_without_a_shared_folder_the_package_and_the_port_go_through_the_store(
    staged_api: Api, ray_cluster: RayCluster, bucket: tuple[ObjectStore, str]
) -> None:
    store, name = bucket
    tag = uuid.uuid4().hex[:8]
    # The package is written in a scratch folder of this machine, then put in S3, where the server reads it.
    write_custom_package(staged_api.server, "scratch", tag, "through-s3")
    scratch = staged_api.server.data_dir / "obs"
    store.upload(scratch / "scratch" / tag, parse_obs_url(f"obs://{name}/src/{tag}/"))
    shutil.rmtree(scratch)
    before = set(_ray_jobs(ray_cluster))
    model_id = published_model(staged_api, f"m-{tag}", f"/{name}/src/{tag}/")
    service_id = deploy(staged_api, f"svc-{tag}", [entry(model_id)])
    shown = wait_service(staged_api, service_id, "running", "failed", timeout=180.0)
    assert shown["status"] == "running", shown.get("error_msg")
    started = {sid: state for sid, state in _ray_jobs(ray_cluster).items() if sid not in before}
    assert list(started.values()) == ["RUNNING"], started

    answer = staged_api.call("POST", shown["access_address"], {"values": [1]})
    assert answer.status_code == 200 and answer.json()["version"] == "through-s3", answer.text
    # The server copied the package to its private directory; the instance reads the copy its node
    # staged into the instance folder, and listens on the port it reported to the store.
    private = f"obs://{name}/{PRIVATE}/services/{service_id}"
    assert read(store, f"{private}/models/{model_id}/version.txt") == "through-s3"
    [server] = instance_processes(staged_api.server.data_dir)
    argv = server.cmdline()
    model_dir = Path(argv[argv.index("--model-dir") + 1])
    assert model_dir.name == "model" and model_dir.parent.parent.name == service_id, argv
    assert argv[argv.index("--port") + 1] == "0"
    [instance_dir] = store.list(parse_obs_url(f"{private}/instances/"))
    [report] = store.list(instance_dir.path)
    assert int(store.read_bytes(report.path)) in _listening_ports(server)

    # Delete ends the Ray job and removes the service's private directory.
    staged_api.ok("DELETE", f"{SERVICES}/{service_id}")
    wait_gone(staged_api, service_id)
    assert set(_wait_stopped(ray_cluster, set(started)).values()) <= {"STOPPED", "FAILED"}
    assert not store.exists(parse_obs_url(f"{private}/"))
