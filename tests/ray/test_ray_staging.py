"""Jobs on Ray nodes that do not share the server's data folder: the nodes stage code, inputs and outputs
through the S3-compatible object store themselves (moto's server here).

Cheap tests first (no cluster): the settings the server accepts, the staging the training code plans,
and the entrypoint's staging run on this machine as a node would run it. Then one training job through
the real server and the real two-node cluster, its folder not shared: on one machine both "nodes" see
the server's folder, so what is checked is that the server neither downloads nor uploads (its copy of
the job's folder holds no code, inputs or outputs: the node removes its own copy after the upload) and
that the output reaches S3 with what the script wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from huaweicloudsdkmodelarts.v1 import ShowTrainingJobLogsPreviewRequest

from openarts.compute import ray_entry
from openarts.compute.executor import LaunchSpec, job_environment
from openarts.compute.executors import make_executor
from openarts.compute.local import LocalExecutor
from openarts.compute.ray_executor import RayExecutor, RemoteStore, staging_description, validate_ray_settings
from openarts.config import Settings
from openarts.storage.paths import parse_obs_url, segment_problem
from openarts.storage.store import ObjectStore
from openarts.training.jobs.workdir import JobDir, launch_spec, prepare, remote_upload_problems, upload_outputs
from tests.ray.conftest import RayCluster
from tests.support.databases import fresh_database
from tests.support.executors import ray_server_env
from tests.support.server import LiveServer
from tests.training.jobs_support import job, wait_for

KEYS = {"OPENARTS_OBS_ACCESS_KEY": "testing", "OPENARTS_OBS_SECRET_KEY": "testing"}


def s3_settings(endpoint: str, data_dir: Path, **extra: str) -> Settings:
    return Settings.from_env({"OPENARTS_DATA_DIR": str(data_dir), "OPENARTS_OBS_ENDPOINT": endpoint, **KEYS, **extra})


@pytest.fixture
def bucket(moto_s3: str, tmp_path: Path) -> Iterator[tuple[ObjectStore, str]]:
    """A fresh bucket in the session's S3 store, and a store on it (the server's view)."""
    store = ObjectStore(s3_settings(moto_s3, tmp_path / "server"))
    name = f"b-{uuid.uuid4().hex[:12]}"
    store._fs.mkdir(name)  # buckets are made outside the store on S3
    yield store, name


def put(store: ObjectStore, url: str, text: str) -> None:
    store.write_bytes(parse_obs_url(url), text.encode())


def read(store: ObjectStore, url: str) -> str:
    return store.read_bytes(parse_obs_url(url)).decode()


# --- settings --------------------------------------------------------------------------------------------


def test_ray_with_the_local_store_and_no_shared_folder_is_refused_with_the_reason(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"OPENARTS_DATA_DIR": str(tmp_path), "OPENARTS_EXECUTOR": "ray", "OPENARTS_RAY_ADDRESS": "http://h:8265"}
    )
    with pytest.raises(ValueError, match="local object store") as refused:
        validate_ray_settings(settings)
    assert "OPENARTS_OBS_ENDPOINT" in str(refused.value) and "OPENARTS_RAY_SHARED_FS=1" in str(refused.value)
    with pytest.raises(ValueError, match="local object store"):
        make_executor(settings)


def test_ray_with_an_s3_store_is_accepted_and_the_nodes_stage(tmp_path: Path) -> None:
    ray_env = {"OPENARTS_EXECUTOR": "ray", "OPENARTS_RAY_ADDRESS": "http://h:8265"}
    settings = s3_settings("http://s3.example:9000", tmp_path, **ray_env)
    validate_ray_settings(settings)
    executor = make_executor(settings)
    assert isinstance(executor, RayExecutor) and executor.stages_remotely
    assert "testing" not in repr(executor._store)  # the keys stay out of log lines
    shared = s3_settings("http://s3.example:9000", tmp_path, OPENARTS_RAY_SHARED_FS="1", **ray_env)
    validate_ray_settings(shared)
    assert not make_executor(shared).stages_remotely  # a shared folder: the server stages, as locally
    local_shared = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path), "OPENARTS_RAY_SHARED_FS": "1", **ray_env})
    validate_ray_settings(local_shared)
    assert not make_executor(local_shared).stages_remotely
    assert not LocalExecutor.stages_remotely


# --- what the training code plans ------------------------------------------------------------------------

PLAN: dict[str, Any] = {
    "python": sys.executable,
    "code_dir": "obs://bkt/job/code/",
    "boot_file": "main.py",
    "inputs": [{"name": "data_url", "obs_url": "obs://bkt/data/", "access_method": "parameter"}],
    "outputs": [{"name": "train_url", "obs_url": "obs://bkt/out", "access_method": "env"}],
}


class NoStore:
    """A store the server must not touch when the nodes stage."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the server used its store ({name}) though the nodes stage")


def test_a_remote_job_plans_the_same_folder_and_the_server_stages_nothing(tmp_path: Path) -> None:
    folder = JobDir(tmp_path / "jobs" / "j1")
    store: Any = NoStore()
    prepare(PLAN, folder, store, remote=True)
    assert sorted(path.name for path in folder.root.iterdir()) == ["logs"]
    spec = launch_spec(PLAN, folder)
    assert spec.argv == [sys.executable, str(folder.code / "main.py"), f"--data_url={folder.input('data_url')}"]
    assert spec.env == {"train_url": str(folder.output("train_url"))}  # the command line does not change
    staging = spec.staging
    assert staging is not None and staging.root == folder.root
    assert [(d.name, d.url, d.path) for d in staging.downloads] == [
        ("code", "obs://bkt/job/code/", "code"),
        ("data_url", "obs://bkt/data/", "inputs/data_url"),
    ]
    assert [(u.name, u.url, u.path) for u in staging.uploads] == [("train_url", "obs://bkt/out/", "outputs/train_url")]
    # A search trial uploads its own output subfolder, under the same subfolder of the URL.
    trial = launch_spec(PLAN, folder, output_subfolder="trials/t1").staging
    assert trial is not None
    assert [(u.url, u.path) for u in trial.uploads] == [("obs://bkt/out/trials/t1/", "outputs/train_url/trials/t1")]
    assert not (folder.root / "outputs").exists()  # the node makes it
    assert upload_outputs(PLAN, folder, store, remote=True) == []


def test_upload_problems_a_node_reported_are_read_from_the_logs(tmp_path: Path) -> None:
    folder = JobDir(tmp_path / "j")
    folder.log.parent.mkdir(parents=True)
    folder.log.write_text(
        "training...\n[openarts] output train_url could not be uploaded: PermissionError: denied\n"
        "[openarts] output train_url could not be uploaded: again\n"
    )
    trial_log = folder.trial("t1") / "log.txt"
    trial_log.parent.mkdir(parents=True)
    trial_log.write_text("[openarts] output model could not be uploaded: OSError: full\n")
    other = folder.trial("t2") / "log.txt"
    other.parent.mkdir(parents=True)
    # A rank of a job on several nodes: Ray prefixes its lines, maybe in colour.
    other.write_text("\x1b[36m(_rank pid=7, ip=10.0.0.2)\x1b[0m [openarts] output ckpt could not be uploaded: x\n")
    assert remote_upload_problems(folder) == [
        "output train_url could not be uploaded: PermissionError: denied",
        "output model could not be uploaded: OSError: full",
        "output ckpt could not be uploaded: x",
    ]


def test_the_node_keeps_to_the_object_key_grammar() -> None:
    names = ["a.txt", "Ünïcode", "with space", "..", ".", "", "a/b", "a\\b", "x\x00", "½", "ŀ", "a" * 256]
    for name in [*names, "ok-_.+=@,~()!'"]:
        assert (ray_entry.segment_problem(name) is None) == (segment_problem(name) is None), name


# --- the entrypoint's staging, run here as a node runs it -------------------------------------------------


def node_job(spec: LaunchSpec, endpoint: str) -> dict[str, Any]:
    """The job description RayExecutor sends, for the entrypoint's functions."""
    assert spec.staging is not None
    store = RemoteStore(endpoint, "testing", "testing")
    return {
        "argv": spec.argv,
        "cwd": str(spec.cwd),
        "env": job_environment(spec),
        "memory_mb": None,
        "staging": staging_description(spec.staging, store),
    }


SCRIPT = """
import argparse, os
parser = argparse.ArgumentParser(); parser.add_argument("--data_url"); args, _ = parser.parse_known_args()
import helper
print("input:", open(os.path.join(args.data_url, "sub", "in.txt")).read(), helper.VALUE, flush=True)
out = os.environ["train_url"]
text = open(os.path.join(args.data_url, "sub", "in.txt")).read()
open(os.path.join(out, "result.txt"), "w").write("made from " + text)
os.makedirs(os.path.join(out, "deep"), exist_ok=True)
open(os.path.join(out, "deep", "b.bin"), "wb").write(b"bb")
os.symlink("/etc/passwd", os.path.join(out, "link"))
"""


def plan_for(bucket: str, *, out_bucket: str | None = None) -> dict[str, Any]:
    return {
        **PLAN,
        "code_dir": f"obs://{bucket}/job/code/",
        "inputs": [{"name": "data_url", "obs_url": f"obs://{bucket}/data/", "access_method": "parameter"}],
        "outputs": [{"name": "train_url", "obs_url": f"obs://{out_bucket or bucket}/out/", "access_method": "env"}],
    }


def test_the_entrypoint_stages_runs_uploads_and_removes_its_copy(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store, name = bucket
    put(store, f"obs://{name}/job/code/main.py", SCRIPT)
    put(store, f"obs://{name}/job/code/helper.py", "VALUE = 42\n")
    put(store, f"obs://{name}/data/sub/in.txt", "hello")
    folder = JobDir(tmp_path / "node" / "jobs" / "j1")  # the node's copy: nothing exists there yet
    job = node_job(launch_spec(plan_for(name), folder), moto_s3)

    assert ray_entry.run_staged(job, {}) == 0
    out = capfd.readouterr().out
    assert "input: hello 42" in out and "[openarts] staged the job's folder on node" in out
    assert "[openarts] not uploading" in out and "link: it is a symbolic link" in out
    assert read(store, f"obs://{name}/out/result.txt") == "made from hello"
    assert read(store, f"obs://{name}/out/deep/b.bin") == "bb"
    assert not store.exists(parse_obs_url(f"obs://{name}/out/link"))
    # The node's copy is gone; only the two lock files stay in the job's folder.
    assert sorted(os.listdir(folder.root)) == [ray_entry.STAGING_LOCK, ray_entry.STAGING_USERS]


def test_a_copy_in_use_by_another_process_of_the_job_is_kept(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    import fcntl

    store, name = bucket
    put(store, f"obs://{name}/job/code/main.py", "print('ran')\n")
    folder = JobDir(tmp_path / "node" / "j2")
    plan = {**plan_for(name), "inputs": [], "outputs": []}
    job = node_job(launch_spec(plan, folder), moto_s3)
    folder.root.mkdir(parents=True)
    users = os.open(folder.root / ray_entry.STAGING_USERS, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(users, fcntl.LOCK_SH)  # another trial of the same job on this node
    try:
        assert ray_entry.run_staged(job, {}) == 0
        assert (folder.code / "main.py").exists() and (folder.root / ray_entry.STAGED_MARKER).exists()
        assert ray_entry.run_staged(job, {}) == 0  # the second one reuses the copy
        assert capfd.readouterr().out.count("[openarts] staged") == 1
    finally:
        os.close(users)
    assert ray_entry.run_staged(job, {}) == 0  # the last user removes it
    assert not folder.code.exists()


def test_a_missing_input_fails_the_job_before_the_command_runs(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store, name = bucket
    put(store, f"obs://{name}/job/code/main.py", "print('must not run')\n")
    folder = JobDir(tmp_path / "node" / "j3")
    job = node_job(launch_spec(plan_for(name), folder), moto_s3)  # obs://name/data/ holds nothing
    assert ray_entry.run_staged(job, {}) == ray_entry.EXIT_STAGING_FAILED
    out = capfd.readouterr().out
    assert "must not run" not in out
    assert f"[openarts] staging failed on node {os.uname().nodename}: " in out
    assert f"data_url (obs://{name}/data/) could not be downloaded" in out
    assert not folder.code.exists()


def test_a_failed_upload_is_reported_where_the_server_reads_it(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    store, name = bucket
    script = "import os; open(os.environ['train_url'] + '/r.txt', 'w').write('r')\n"
    put(store, f"obs://{name}/job/code/main.py", script)
    folder = JobDir(tmp_path / "node" / "j4")
    plan = {**plan_for(name, out_bucket="no-such-bucket-x"), "inputs": []}
    job = node_job(launch_spec(plan, folder), moto_s3)
    assert ray_entry.run_staged(job, {}) == 0  # the command's exit code
    out = capfd.readouterr().out
    folder.log.parent.mkdir(parents=True)
    folder.log.write_text(out)  # where the executor copies the node's output
    problems = remote_upload_problems(folder)
    assert len(problems) == 1 and problems[0].startswith("output train_url could not be uploaded: "), out


def test_boto3_serves_a_node_without_s3fs(bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path) -> None:
    pytest.importorskip("boto3")
    store, name = bucket
    put(store, f"obs://{name}/in/a.txt", "a")
    put(store, f"obs://{name}/in/sub/b.txt", "b")
    node = ray_entry.Boto3Store({"endpoint": moto_s3, "access_key": "testing", "secret_key": "testing"})
    root = str(tmp_path / "root")
    os.makedirs(root)
    assert ray_entry.download(node, f"obs://{name}/in/", root, "inputs/x") == (2, 2)
    assert ray_entry.download(node, f"obs://{name}/in/a.txt", root, "inputs/y") == (1, 1)
    assert Path(root, "inputs/x/sub/b.txt").read_text() == "b" and Path(root, "inputs/y/a.txt").read_text() == "a"
    with pytest.raises(ray_entry.StagingError, match="does not exist"):
        ray_entry.download(node, f"obs://{name}/missing/", root, "inputs/z")
    assert ray_entry.upload(node, str(Path(root, "inputs")), f"obs://{name}/back") == 3
    assert read(store, f"obs://{name}/back/x/sub/b.txt") == "b"


# --- through the server and the cluster ------------------------------------------------------------------


@contextlib.contextmanager
def server_staging_through_s3(address: str, moto_s3: str, backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A live server whose jobs run on the cluster at ``address`` and whose nodes stage through the S3 store
    (no shared folder), two CPUs in its pool."""
    if backend != "sqlite":
        pytest.skip("the executor, not the database, is under test here")
    with fresh_database(backend, tmp_path) as url:
        env = {
            **ray_server_env(address, shared_fs=False),  # the nodes stage through the object store
            "OPENARTS_OBS_ENDPOINT": moto_s3,
            **KEYS,
            "OPENARTS_COMPUTE_CPUS": "2",
        }
        live = LiveServer(tmp_path / "data", url, env=env)
        live.start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture
def staging_server(ray_cluster: RayCluster, moto_s3: str, backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    with server_staging_through_s3(ray_cluster.address, moto_s3, backend, tmp_path) as live:
        yield live


@pytest.mark.timeout(180)
def test_a_job_on_ray_gets_code_and_inputs_from_s3_and_puts_its_output_there(
    staging_server: LiveServer, bucket: tuple[ObjectStore, str]
) -> None:
    store, name = bucket
    script = (
        "import argparse, os\n"
        "import helper\n"
        "parser = argparse.ArgumentParser(); parser.add_argument('--data_url'); parser.add_argument('--train_url')\n"
        "args, _ = parser.parse_known_args()\n"
        "text = open(os.path.join(args.data_url, 'in.txt')).read()\n"
        "print('read', text, helper.VALUE, 'in', os.getcwd())\n"
        "open(os.path.join(args.train_url, 'result.txt'), 'w').write('result of ' + text)\n"
    )
    put(store, f"obs://{name}/job/code/main.py", script)
    put(store, f"obs://{name}/job/code/helper.py", "VALUE = 'from-s3'\n")
    put(store, f"obs://{name}/data/in.txt", "the input")
    request = job(
        "staged-on-ray",
        code_dir=f"obs://{name}/job/code/",
        boot_file=f"obs://{name}/job/code/main.py",
        inputs={"data_url": f"obs://{name}/data/"},
        outputs={"train_url": f"obs://{name}/out/"},
    )
    client = staging_server.client()
    job_id = client.create_training_job(request).metadata.id
    ended = wait_for(client, job_id, timeout=150)
    logs = client.show_training_job_logs_preview(
        ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
    ).content
    assert ended.status.phase == "Completed", (ended.status, logs)
    folder = JobDir(staging_server.data_dir / "jobs" / job_id)
    assert f"read the input from-s3 in {folder.code}" in logs  # the command line is the local one
    assert "[openarts] staged the job's folder on node" in logs
    assert read(store, f"obs://{name}/out/result.txt") == "result of the input"
    # The server staged nothing: no copy of the code, inputs or outputs of its own (the node removed its
    # copy after the upload, which is how the output got to S3); its folder holds the log and exit files.
    assert not folder.code.exists() and not (folder.root / "inputs").exists()
    assert not (folder.root / "outputs").exists()
    assert folder.log.exists() and folder.exit_file.read_text().strip() == "0"
    assert json.loads((folder.root / "exit_code.ray").read_text())["copied"] > 0
