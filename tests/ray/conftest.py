"""A real Ray cluster on this machine for the session: a head node and a second worker node, loopback only.

Both nodes are ``ray start --block`` processes in sessions of their own, so the fixture ends exactly
the processes it started (each node's processes die with its ``ray start``). Token authentication is on,
as a server in production should use it. Each node offers two CPUs (logical: Ray places by them, it does
not pin them), the cores of the smallest flavor, ``modelarts.vm.cpu.2u``, which jobs through the server
ask of their node; a two-node job lands one rank on each (STRICT_SPREAD).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

RAY = str(Path(sys.executable).with_name("ray"))
START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class RayCluster:
    address: str  # the dashboard's HTTP address, for RayExecutor
    head: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None
    temp_dir: Path

    def kill_worker(self) -> None:
        """The worker node's machine going away: every process of the node, at once.

        Not only the ``ray start`` process group: Ray starts each worker process (a task's, with the
        command it runs) in a process group of its own, and those would live on until they noticed that
        their raylet had gone. They stay in the node's session, and name the node's temp dir.
        """
        assert self.worker is not None
        deadline = time.monotonic() + 10.0
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.worker.pid, signal.SIGKILL)
        while (left := self.worker_processes()) and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)
        self.worker.wait()

    def worker_processes(self) -> dict[int, str]:
        """The worker node's processes still alive (pid: command line)."""
        assert self.worker is not None
        return _node_processes(self.worker.pid, str(self.temp_dir / "worker"))


def _node_processes(session: int, marker: str) -> dict[int, str]:
    """The live processes of a node (pid: command line): those in its ``ray start``'s session, and any
    naming its temp dir."""
    found: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                stat = stat_file.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:  # gone meanwhile
            continue
        state, _ppid, _pgrp, sid = stat.rsplit(b")", 1)[1].split()[:4]  # after the command's name
        if state == b"Z":  # dead, only waiting to be reaped
            continue
        if int(sid) == session or marker in cmdline:
            found[int(entry.name)] = cmdline or "?"
    return found


def _start_node(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [RAY, "start", "--block", "--disable-usage-stats", *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _wait_for_nodes(address: str, count: int, processes: list[subprocess.Popen[bytes]], logs: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + START_TIMEOUT_S
    client = None
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a Ray node exited at start: see {logs}")
        try:
            client = client or JobSubmissionClient(address)
            nodes = client._do_request("GET", "/nodes?view=summary")  # the dashboard's own node list
            alive = [n for n in nodes.json()["data"]["summary"] if n.get("raylet", {}).get("state") == "ALIVE"]
            if len(alive) >= count:
                return
        except Exception:  # not up yet
            client = None
        time.sleep(0.5)
    raise RuntimeError(f"the Ray cluster did not start within {START_TIMEOUT_S:.0f} s: see {logs}")


def _reload_ray_auth() -> None:
    """Make this process read the RAY_AUTH_* variables again: Ray cached them when it was imported (at
    collection), and a server, unlike these tests, has them in its environment from the start."""
    from ray._private.authentication_test_utils import reset_auth_token_state

    reset_auth_token_state()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    pytest.importorskip("ray")
    from tests.support.executors import started_ray_cluster  # started again if a node exits at start

    with started_ray_cluster(nodes=2) as cluster:
        yield cluster


@contextlib.contextmanager
def running_cluster(nodes: int = 2, cpus: int = 2) -> Iterator[RayCluster]:
    """A head node (and a worker node when ``nodes`` is 2) of ``cpus`` CPUs each, token authentication
    on, for the block."""
    temp_dir = Path(tempfile.mkdtemp(prefix="oa-ray-", dir="/tmp"))  # short: Ray's socket paths are limited
    token = secrets.token_hex(16)
    saved = {key: os.environ.get(key) for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    # This process is the OpenArts server of the tests: it authenticates with the token too.
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    _reload_ray_auth()
    env = {
        **os.environ,
        # Notice a lost node within seconds rather than the default half minute.
        "RAY_health_check_initial_delay_ms": "0",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
    }
    gcs_port, dashboard_port = _free_port(), _free_port()
    # Each node its own temp dir: on a shared one, both nodes' log monitors would send every line twice.
    common = ["--node-ip-address=127.0.0.1", f"--num-cpus={cpus}", "--num-gpus=0"]
    head = _start_node(
        [
            "--head",
            f"--port={gcs_port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            f"--ray-client-server-port={_free_port()}",
            f"--dashboard-agent-listen-port={_free_port()}",
            "--min-worker-port=0",
            "--max-worker-port=0",
            f"--temp-dir={temp_dir / 'head'}",
            *common,
        ],
        env,
        temp_dir / "head.out",
    )
    address = f"http://127.0.0.1:{dashboard_port}"
    worker: subprocess.Popen[bytes] | None = None
    try:
        _wait_for_nodes(address, 1, [head], temp_dir)
        if nodes < 2:
            yield RayCluster(address=address, head=head, worker=None, temp_dir=temp_dir)
            return
        worker = _start_node(
            [
                f"--address=127.0.0.1:{gcs_port}",
                f"--dashboard-agent-listen-port={_free_port()}",
                "--min-worker-port=0",
                "--max-worker-port=0",
                f"--temp-dir={temp_dir / 'worker'}",
                *common,
            ],
            env,
            temp_dir / "worker.out",
        )
        _wait_for_nodes(address, 2, [head, worker], temp_dir)
        yield RayCluster(address=address, head=head, worker=worker, temp_dir=temp_dir)
    finally:
        for process in (worker, head):
            if process is None or process.poll() is not None:
                continue
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)  # ray start --block stops its node's processes
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_ray_auth()
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[str]:
    """An S3-compatible store for the session (moto's server on loopback), as tests/storage starts one; its
    endpoint. Any key and secret are accepted; buckets are made by the tests."""
    pytest.importorskip("s3fs")
    server_module = pytest.importorskip("moto.server")
    port = _free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
