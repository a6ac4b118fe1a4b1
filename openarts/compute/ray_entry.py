"""The entrypoint of one OpenArts job on a Ray cluster: runs on a cluster node, not in the server.

``RayExecutor`` submits ``PYTHON -c <this file's source>`` as a Ray job; the job's description (argv,
folder, environment, limits, node count) arrives as JSON in the ``OPENARTS_RAY_JOB`` variable of the
job's runtime environment. So no user string is ever part of the shell command Ray Jobs runs, and this
file needs nothing from OpenArts on the node (only Ray itself, for jobs on several nodes).

- One node: the command runs as this process's child, with exactly the job's environment (the node's
  own, which holds ``RAY_AUTH_TOKEN`` and the cluster address, is not passed on), the memory limit, and
  this process's exit code is the command's (128+N when killed by signal N), which Ray records as the
  driver's exit code.
- Several nodes: a placement group with one bundle per node (STRICT_SPREAD), one Ray task per bundle,
  each running the command with the rendezvous variables a distributed training script expects (RANK,
  WORLD_SIZE, LOCAL_RANK, NODE_RANK, MASTER_ADDR, MASTER_PORT). The exit code is rank 0's, or the first
  non-zero one; a rank whose node or worker dies fails the job with a message naming the rank and Ray's
  reason, which reaches the job's log.

Every command is started with the parent-death signal set to SIGKILL, so that when Ray ends the process
running it (a stop, a lost node, a cancelled task) the command does not run on unaccounted for.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

EXIT_NO_FOLDER = 126
EXIT_LOST_RANK = 1
_PR_SET_PDEATHSIG = 1
_STOP_GRACE_S = 5.0


def _preexec(memory_mb: int | None) -> None:
    """In the child before exec: die with the parent, and cap the address space like the local runner."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if memory_mb is not None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


def run_command(job: dict[str, Any], extra_env: dict[str, str]) -> int:
    """Run the job's command here and return its exit code; SIGTERM to this process is passed on."""
    cwd = job["cwd"]
    if not os.path.isdir(cwd):
        print(
            f"[openarts] the job's folder {cwd} does not exist on node {socket.gethostname()}: every Ray node "
            "must share the OpenArts data folder at the same path (OPENARTS_RAY_SHARED_FS)",
            flush=True,
        )
        return EXIT_NO_FOLDER
    env = dict(job["env"])
    # Ray chose the GPUs of this node for the job (entrypoint_num_gpus, or the task's num_gpus).
    if "CUDA_VISIBLE_DEVICES" in os.environ and job.get("gpus_per_node"):
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    env.update(extra_env)
    os.makedirs(env.get("TMPDIR") or os.path.join(cwd, "tmp"), exist_ok=True)
    memory_mb = job.get("memory_mb")
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list, never a shell
            job["argv"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _preexec(memory_mb),  # prctl and setrlimit only
        )
    except FileNotFoundError:
        print(f"[openarts] command not found: {job['argv'][0]}", flush=True)
        return 127
    except PermissionError:
        print(f"[openarts] command cannot be executed: {job['argv'][0]}", flush=True)
        return 126

    def forward(signum: int, frame: object) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        while True:
            try:
                return _exit_code(process.wait())
            except KeyboardInterrupt:  # a cancelled Ray task, or SIGINT: stop the command, then report it
                process.terminate()
                try:
                    return _exit_code(process.wait(timeout=_STOP_GRACE_S))
                except subprocess.TimeoutExpired:
                    process.kill()
    finally:
        signal.signal(signal.SIGTERM, previous)


def _node_address() -> str:
    import ray

    # Through a typed name: Ray's function has no annotations (and Ray may be absent when type-checking).
    get: Callable[[], str] = ray.util.get_node_ip_address
    return get()


def _rendezvous() -> tuple[str, int]:
    """This node's address and a free port on it: where rank 0 will listen."""
    address = _node_address()
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = int(probe.getsockname()[1])
    return address, port


def _rank(job: dict[str, Any], rank: int, master: tuple[str, int]) -> int:
    world = int(job["nodes"])
    extra = {
        "RANK": str(rank),
        "NODE_RANK": str(rank),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": master[0],
        "MASTER_PORT": str(master[1]),
    }
    print(f"[openarts] rank {rank}/{world} on {_node_address()}", flush=True)
    return run_command(job, extra)


def run_distributed(job: dict[str, Any]) -> int:
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    nodes = int(job["nodes"])
    bundle: dict[str, float] = {"CPU": float(job.get("cpus_per_node") or 1)}
    if job.get("gpus_per_node"):
        bundle["GPU"] = float(job["gpus_per_node"])
    if job.get("memory_bytes_per_node"):
        bundle["memory"] = float(job["memory_bytes_per_node"])
    ray.init(address="auto", log_to_driver=True)
    group = placement_group([dict(bundle) for _ in range(nodes)], strategy="STRICT_SPREAD")
    print(f"[openarts] waiting for {nodes} nodes with {bundle} each", flush=True)
    ray.get(group.ready())

    def on(index: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=index)

    # Nothing is retried: a user's command must not run twice because a node went away.
    options: dict[str, Any] = {"num_cpus": bundle["CPU"], "num_gpus": bundle.get("GPU", 0), "max_retries": 0}
    master = ray.get(ray.remote(_rendezvous).options(scheduling_strategy=on(0), **options).remote())
    remote_rank = ray.remote(_rank)
    refs = [remote_rank.options(scheduling_strategy=on(i), **options).remote(job, i, master) for i in range(nodes)]

    def stop(signum: int, frame: object) -> None:
        for ref in refs:
            ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its command and reports

    signal.signal(signal.SIGTERM, stop)
    codes: dict[int, int] = {}
    pending = list(refs)
    failure: str | None = None
    while pending and failure is None:
        done, pending = ray.wait(pending, num_returns=1)
        index = refs.index(done[0])
        try:
            codes[index] = int(ray.get(done[0]))
        except ray.exceptions.RayError as exc:
            failure = f"rank {index} was lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        else:
            if codes[index] != 0:
                time.sleep(1.0)  # let the other ranks notice a peer's end on their own first
    if failure is not None:
        print(f"[openarts] the job failed: {failure}", flush=True)
        for ref in pending:
            ray.cancel(ref, force=True)
        remove_placement_group(group)
        return EXIT_LOST_RANK
    remove_placement_group(group)
    if codes.get(0, 0) != 0:
        return codes[0]
    return next((code for _, code in sorted(codes.items()) if code != 0), 0)


def main() -> int:
    job = json.loads(os.environ.pop("OPENARTS_RAY_JOB"))
    if int(job.get("nodes") or 1) > 1:
        return run_distributed(job)
    return run_command(job, {})


if __name__ == "__main__":
    sys.exit(main())
