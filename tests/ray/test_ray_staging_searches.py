"""Searches and jobs over several nodes on Ray nodes that do not share the server's data folder: each process
stages the job's folder through the S3-compatible object store (moto's server here), as
tests/ray/test_ray_staging.py checks for a single training job.

First the entrypoint on this machine: trials of one search that share a node's copy each get their own
output folder. Then a hyperparameter search through the real server on a one-node cluster of its own
(every trial a Ray job, its code from S3, its reward read from its log, its output under
``URL/trials/TRIAL/``), and a job over both nodes of the session's two-node cluster through the executor
(the API refuses ``node_count`` other than 1, so nothing else launches one), whose ranks each stage, run
and upload. On one machine both "nodes" see the server's folder: what is checked is that the server
staged nothing and that what the commands wrote reached S3.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ray")

from openarts.compute import ray_entry
from openarts.compute.ray_executor import RayExecutor, RayResources, RemoteStore
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from openarts.training.jobs.workdir import JobDir, launch_spec
from tests.autosearch.search_support import rows, search_policy
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_executor import wait_outcome
from tests.ray.test_ray_staging import node_job, put, read, s3_settings, server_staging_through_s3
from tests.support.executors import started_ray_cluster
from tests.support.server import LiveServer
from tests.training.jobs_support import job, wait_for

STAGED = "[openarts] staged the job's folder on node"


@pytest.fixture
def bucket(moto_s3: str, tmp_path: Path) -> Iterator[tuple[ObjectStore, str]]:
    """A fresh bucket in the session's S3 store, and a store on it (the server's view)."""
    store = ObjectStore(s3_settings(moto_s3, tmp_path / "view"))
    name = f"b-{os.urandom(6).hex()}"
    store._fs.mkdir(name)  # buckets are made outside the store on S3
    yield store, name


def keys_below(store: ObjectStore, url: str) -> list[str]:
    """The object keys below the directory ``url``, relative to it, sorted."""
    top = parse_obs_url(url)
    return sorted(info.path.key[len(top.key) :] for info in store.walk(top) if not info.is_dir)


# --- the entrypoint, run here as a node runs it ----------------------------------------------------------


def test_trials_sharing_a_nodes_copy_each_get_their_output_folder(
    bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path
) -> None:
    """The second trial on a node finds the copy made (it does not download again) and still finds the
    output subfolder its command line names, and uploads it under its own subfolder of the URL."""
    store, name = bucket
    script = "import os, sys; open(os.path.join(os.environ['train_url'], 'r.txt'), 'w').write(sys.argv[1])\n"
    put(store, f"obs://{name}/job/code/main.py", script)
    plan: dict[str, Any] = {
        "python": sys.executable,
        "code_dir": f"obs://{name}/job/code/",
        "boot_file": "main.py",
        "inputs": [],
        "outputs": [{"name": "train_url", "obs_url": f"obs://{name}/out/", "access_method": "env"}],
    }
    folder = JobDir(tmp_path / "node" / "jobs" / "search")
    trials = {
        trial: node_job(launch_spec(plan, folder, overrides={"x": trial}, output_subfolder=f"trials/{trial}"), moto_s3)
        for trial in ("t1", "t2")
    }
    folder.root.mkdir(parents=True)
    users = os.open(folder.root / ray_entry.STAGING_USERS, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(users, fcntl.LOCK_SH)  # a third trial of the search, running on this node meanwhile
    try:
        assert ray_entry.run_staged(trials["t1"], {}) == 0
        assert (folder.root / ray_entry.STAGED_MARKER).exists()  # the copy stays for the others
        assert ray_entry.run_staged(trials["t2"], {}) == 0
    finally:
        os.close(users)
    assert read(store, f"obs://{name}/out/trials/t1/r.txt") == "--x=t1"
    assert read(store, f"obs://{name}/out/trials/t2/r.txt") == "--x=t2"
    assert keys_below(store, f"obs://{name}/out/") == ["trials/t1/r.txt", "trials/t2/r.txt"]


# --- a search through the server and the cluster ---------------------------------------------------------


@pytest.fixture
def one_node_cluster() -> Iterator[RayCluster]:
    """A cluster of one node (one CPU) for the test. Not the session's two nodes: on one machine the second
    node's dashboard agent serves the head's copy of a driver's log (see tests/conftest.py), so a trial whose
    driver ran there would show no reward; on one node the log is whole (and the trials queue in Ray)."""
    with started_ray_cluster(nodes=1, cpus=1) as cluster:
        yield cluster


@pytest.fixture
def staging_server(one_node_cluster: RayCluster, moto_s3: str, backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    """A server whose jobs run on the cluster and whose nodes stage through S3. Two CPUs in its pool, so a
    search on the 2-CPU flavor launches two trials at once."""
    with server_staging_through_s3(one_node_cluster.address, moto_s3, backend, tmp_path) as live:
        yield live


TRIAL = """
import argparse, os
import helper
parser = argparse.ArgumentParser()
for name in ("x", "y", "train_url"):
    parser.add_argument("--" + name)
args, _ = parser.parse_known_args()
loss = (float(args.x) - 1.5) ** 2 + (float(args.y) + 2.0) ** 2
open(os.path.join(args.train_url, "result.txt"), "w").write(f"{loss:.6f} {helper.VALUE}")
print(f"loss={loss:.6f}", flush=True)
"""


@pytest.mark.timeout(240)
def test_a_search_runs_every_trial_on_ray_with_code_from_s3_and_outputs_per_trial(
    staging_server: LiveServer, bucket: tuple[ObjectStore, str]
) -> None:
    """Three trials, two at a time (the flavor's 2 CPUs): each is a Ray job that gets the code from S3 and
    uploads its output under ``URL/trials/TRIAL/``; the rewards come from the trials' logs, and the table
    is complete. The server's copy of the job's folder holds no code and no outputs."""
    store, name = bucket
    put(store, f"obs://{name}/search/code/main.py", TRIAL)
    put(store, f"obs://{name}/search/code/helper.py", "VALUE = 'from-s3'\n")
    request = job(
        "search-on-ray",
        code_dir=f"obs://{name}/search/code/",
        boot_file=f"obs://{name}/search/code/main.py",
        outputs={"train_url": f"obs://{name}/out/"},
    )
    request.body.algorithm.policies = search_policy("tpe_search", samples=3)
    client = staging_server.client()
    job_id = client.create_training_job(request).metadata.id
    ended = wait_for(client, job_id, timeout=200)
    folder = JobDir(staging_server.data_dir / "jobs" / job_id)
    logs = {path.parent.name: path.read_text() for path in folder.root.glob("trials/*/log.txt")}
    assert ended.status.phase == "Completed", (ended.status, logs)

    table = rows(client, job_id)
    assert [row["status"] for row in table] == ["TERMINATED"] * 3, (table, logs)
    assert len({row["trial_id"] for row in table}) == 3 and set(logs) == {row["trial_id"] for row in table}
    for row in table:
        trial_id, config = row["trial_id"], row["config"]
        loss = (float(config["x"]) - 1.5) ** 2 + (float(config["y"]) + 2.0) ** 2
        assert row["done"] == "True" and row["reward_attr"] == "loss" and row["training_iteration"] == "1"
        assert float(row["loss"]) == pytest.approx(loss, abs=1e-5), row  # read from the trial's own log
        assert f"loss={float(row['loss']):.6f}" in logs[trial_id]
        # Its output, uploaded by its node under the trial's own subfolder of the URL.
        written, origin = read(store, f"obs://{name}/out/trials/{trial_id}/result.txt").split()
        assert float(written) == pytest.approx(loss, abs=1e-5) and origin == "from-s3"
        # A Ray job, whose log the server copied from the cluster.
        registry = json.loads((folder.trial(trial_id) / "exit_code.ray").read_text())
        assert registry["copied"] > 0 and (folder.trial(trial_id) / "exit_code").read_text().strip() == "0"
    assert keys_below(store, f"obs://{name}/out/") == sorted(f"trials/{row['trial_id']}/result.txt" for row in table)
    # One CPU: the trials ran one after the other, and each staged the job's folder itself.
    assert all(text.count(STAGED) == 1 for text in logs.values()), logs
    # The server launched two at a time: trial 1 before trial 0 ended, trial 2 only after one of them had.
    started = {row["trial_id"]: _launched(folder, row["trial_id"]) for row in table}
    ended_at = {row["trial_id"]: (folder.trial(row["trial_id"]) / "exit_code").stat().st_mtime for row in table}
    first, second, third = (row["trial_id"] for row in table)
    assert started[second] < ended_at[first]
    assert started[third] >= min(ended_at[first], ended_at[second])
    # The server staged nothing: its folder holds the logs and exit files, no code, inputs or outputs.
    assert not folder.code.exists() and not (folder.root / "inputs").exists()
    assert not (folder.root / "outputs").exists()


def _launched(folder: JobDir, trial_id: str) -> float:
    """When the server submitted the trial's Ray job (the handle's start time, kept in its registry)."""
    return float(json.loads((folder.trial(trial_id) / "exit_code.ray").read_text())["start_time"])


# --- a job over both nodes -------------------------------------------------------------------------------

RANKS = """
import os, socket, sys, time
import boto3
import helper
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
out = next(arg.split("=", 1)[1] for arg in sys.argv if arg.startswith("--train_url="))
print(f"rank {rank} of {world}: code {helper.VALUE}", flush=True)
master = (os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]))
if rank == 0:
    with socket.create_server(("", master[1])) as server:
        server.settimeout(60)
        connection, _ = server.accept()
        print("rank 0 heard:", connection.recv(64).decode(), flush=True)
        connection.close()
    open(os.path.join(out, "model.txt"), "w").write("rank 0")
    open(os.path.join(out, "rank-0.txt"), "w").write("0")
    sys.exit(0)
deadline = time.monotonic() + 60
while True:
    try:
        socket.create_connection(master, timeout=1).sendall(b"hello from rank 1")
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(3)
        time.sleep(0.1)
# Wait until rank 0 has uploaded (its last file, in name order, is there): what is written from now on can
# reach the store only through this rank's own upload.
s3 = boto3.client("s3", endpoint_url=os.environ["S3_ENDPOINT"], aws_access_key_id="testing",
                  aws_secret_access_key="testing", region_name="us-east-1")
while not s3.list_objects_v2(Bucket=os.environ["S3_BUCKET"], Prefix="two/out/rank-0.txt").get("KeyCount"):
    if time.monotonic() > deadline:
        sys.exit(4)
    time.sleep(0.2)
open(os.path.join(out, "model.txt"), "w").write("rank 1")
open(os.path.join(out, "rank-1.txt"), "w").write("1")
"""


@pytest.mark.timeout(180)
def test_a_job_on_two_nodes_stages_each_rank_and_each_rank_uploads_its_outputs(
    ray_cluster: RayCluster, bucket: tuple[ObjectStore, str], moto_s3: str, tmp_path: Path
) -> None:
    """Both ranks run the code from S3 with their rank and the world size, and meet at the rendezvous
    address. Every rank uploads its node's output folder when its own command ends (ray_entry.run_staged,
    in each rank's task): what rank 1 writes after rank 0's upload still arrives, and of a file both write
    the store keeps the last upload's. The last rank on a node removes its copy."""
    store, name = bucket
    pytest.importorskip("boto3")
    put(store, f"obs://{name}/two/code/main.py", RANKS)
    put(store, f"obs://{name}/two/code/helper.py", "VALUE = 'from-s3'\n")
    plan: dict[str, Any] = {
        "python": sys.executable,
        "code_dir": f"obs://{name}/two/code/",
        "boot_file": "main.py",
        "inputs": [],
        "outputs": [{"name": "train_url", "obs_url": f"obs://{name}/two/out/", "access_method": "parameter"}],
        "environments": {"S3_ENDPOINT": moto_s3, "S3_BUCKET": name},
    }
    folder = JobDir(tmp_path / "server" / "jobs" / "two")
    folder.create(contents=False)  # as the server makes it: the logs folder only
    spec = launch_spec(plan, folder)
    executor = RayExecutor(ray_cluster.address, store=RemoteStore(moto_s3, "testing", "testing"))
    try:
        handle = executor.launch(spec, RayResources(cpus=1, nodes=2))
        outcome = wait_outcome(executor, handle, spec, timeout_s=150)
    finally:
        executor.close()
    text = spec.log_path.read_text()
    assert outcome.exit_code == 0, text
    assert "rank 0 of 2: code from-s3" in text and "rank 1 of 2: code from-s3" in text
    assert "rank 0 heard: hello from rank 1" in text
    # Both ranks ran at once on one machine's folder: one staged it, the other used that copy.
    assert text.count(STAGED) == 1, text
    assert read(store, f"obs://{name}/two/out/rank-0.txt") == "0"
    assert read(store, f"obs://{name}/two/out/rank-1.txt") == "1"  # only rank 1's upload can have sent it
    assert read(store, f"obs://{name}/two/out/model.txt") == "rank 1"  # the later upload overwrote rank 0's
    assert keys_below(store, f"obs://{name}/two/out/") == ["model.txt", "rank-0.txt", "rank-1.txt"]
    assert not folder.code.exists() and not (folder.root / "outputs").exists()  # the last rank removed the copy
