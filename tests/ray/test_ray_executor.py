"""The Ray executor on a real two-node Ray cluster (see conftest.py): exit codes, logs, stop, re-adoption
after a server restart, and a job over two nodes with the rendezvous variables."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from openarts.compute.executor import LaunchSpec, Outcome, ProcessHandle
from openarts.compute.ray_executor import RayExecutor, RayResources, registry_path
from tests.ray.conftest import RayCluster

PY = sys.executable
JOB_TIMEOUT_S = 60.0


def spec_for(tmp_path: Path, argv: list[str], env: dict[str, str] | None = None) -> LaunchSpec:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return LaunchSpec(
        argv=argv, cwd=work, env=env or {}, log_path=tmp_path / "logs" / "job.log", exit_path=tmp_path / "exit"
    )


def wait_outcome(
    executor: RayExecutor, handle: ProcessHandle, spec: LaunchSpec, timeout_s: float = JOB_TIMEOUT_S
) -> Outcome:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        outcome = executor.outcome(handle, spec.exit_path)
        if outcome is not None:
            return outcome
        time.sleep(0.2)
    raise AssertionError(f"no outcome within {timeout_s} s; log:\n{spec.log_path.read_text()}")


def wait_for_log(spec: LaunchSpec, text: str, count: int = 1) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        if spec.log_path.exists() and spec.log_path.read_text().count(text) >= count:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the log within {JOB_TIMEOUT_S} s:\n{spec.log_path.read_text()}")


def test_a_job_records_its_exit_code_and_logs_with_a_clean_environment(ray_cluster: RayCluster, tmp_path: Path) -> None:
    ended: list[bool] = []
    executor = RayExecutor(ray_cluster.address, on_exit=lambda: ended.append(True))
    script = (
        "import os, sys; print('hello', sys.argv[1], os.environ['GREETING'], os.getcwd());"
        "print('token', os.environ.get('RAY_AUTH_TOKEN'), os.environ.get('OPENARTS_RAY_JOB')); sys.exit(7)"
    )
    # An argument a shell would expand or split: it must reach the program as it is.
    spec = spec_for(tmp_path, [PY, "-c", script, "$(touch pwned) 'a b';"], env={"GREETING": "bonjour"})
    handle = executor.launch(spec)
    outcome = wait_outcome(executor, handle, spec)
    assert outcome.exit_code == 7 and not outcome.lost and outcome.ended_at is not None
    assert spec.exit_path.read_text().strip() == "7"
    text = spec.log_path.read_text()
    assert f"hello $(touch pwned) 'a b'; bonjour {spec.cwd}" in text
    assert "token None None" in text  # the cluster's token and the job description stay out of user code
    assert not (spec.cwd / "pwned").exists()
    assert not executor.is_alive(handle)
    assert ended  # on_exit was called
    executor.close()


def test_stop_ends_the_job(ray_cluster: RayCluster, tmp_path: Path) -> None:
    executor = RayExecutor(ray_cluster.address)
    spec = spec_for(tmp_path, [PY, "-c", "import time; print('started', flush=True); time.sleep(300)"])
    handle = executor.launch(spec)
    wait_for_log(spec, "started")
    assert executor.is_alive(handle)
    executor.terminate(handle)
    outcome = wait_outcome(executor, handle, spec)
    assert outcome.exit_code is not None and outcome.exit_code != 0
    assert not executor.is_alive(handle)
    executor.close()


def test_a_new_executor_readopts_a_running_job_by_its_handle(ray_cluster: RayCluster, tmp_path: Path) -> None:
    first = RayExecutor(ray_cluster.address)
    script = "import time; print('one', flush=True); time.sleep(4); print('two', flush=True)"
    spec = spec_for(tmp_path, [PY, "-c", script])
    handle = first.launch(spec)
    wait_for_log(spec, "one")
    first.close()  # the server goes away; the job does not
    second = RayExecutor(ray_cluster.address)  # the restarted server
    assert second.find(spec.exit_path) == handle  # also found by its exit path, had the handle been lost
    assert second.is_alive(handle)
    outcome = wait_outcome(second, handle, spec)
    assert outcome.exit_code == 0
    text = spec.log_path.read_text()
    lines = text.splitlines()  # whole lines: Ray's own lines (the entrypoint, random ids) may hold "one"
    assert lines.count("one") == 1 and lines.count("two") == 1  # nothing copied twice, nothing missed
    assert registry_path(spec.exit_path).exists()
    second.close()


def test_a_two_node_job_sees_rank_0_and_rank_1(ray_cluster: RayCluster, tmp_path: Path) -> None:
    executor = RayExecutor(ray_cluster.address)
    script = (
        "import os; e = os.environ;"
        "print('rank=%s world=%s local=%s master=%s:%s' % (e['RANK'], e['WORLD_SIZE'], e['LOCAL_RANK'],"
        " e['MASTER_ADDR'], e['MASTER_PORT']), flush=True)"
    )
    spec = spec_for(tmp_path, [PY, "-c", script])
    handle = executor.launch(spec, RayResources(cpus=1, nodes=2))
    outcome = wait_outcome(executor, handle, spec)
    text = spec.log_path.read_text()
    assert outcome.exit_code == 0, text
    assert "rank=0 world=2 local=0" in text and "rank=1 world=2 local=0" in text
    masters = {line.split("master=")[1].split()[0] for line in text.splitlines() if "master=" in line}
    assert len(masters) == 1  # both ranks were told the same rendezvous address
    executor.close()
