"""What a job costs on the Ray executor against the local one, and against running the command directly.

What is measured
----------------
The executor layer, as the training controller drives it: ``launch(LaunchSpec)``, then ``outcome``
polled every 10 ms until the exit code is recorded, for ``python -c pass`` (so up to 10 ms of polling is
in every figure). Three ways, in one run, on this machine:

- direct: ``subprocess.run`` of the same argv (``bench/job_overhead.py``'s baseline);
- local: ``LocalExecutor`` (a runner process in front of the command);
- ray: ``RayExecutor`` on a Ray cluster: ``--address`` (its dashboard, ``http://HEAD:8265``; the
  RAY_AUTH_* variables of this process are used), or by default a one-node cluster this script starts on
  127.0.0.1 with token authentication (tests/ray/conftest.py's helper) and stops at the end.

``--warmups`` jobs of each kind are run first and not counted. Printed: median and p90 per kind, the
overhead over direct (``median(kind) - median(direct)``), and the ratios ray / local and ray / direct.

Not measured here: the server's part (HTTP, database, controller loop), which is the same for both
executors (``bench/job_overhead.py`` measures it), and the search-overhead benchmark on Ray, which waits
for the controllers to take the executor from ``make_executor`` (see docs/operations.md).

Usage: ``python bench/ray_overhead.py [--jobs 10] [--warmups 2] [--address http://HEAD:8265]``
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository, for tests/ray's cluster

from job_overhead import direct_argv, machine_line, ms, p90, run_direct

from openarts.compute.executor import Executor, LaunchSpec
from openarts.compute.local import LocalExecutor

COMMAND = "python -c pass"
POLL_S = 0.01
JOB_TIMEOUT_S = 120.0


def run_job(executor: Executor, folder: Path, argv: list[str]) -> float:
    """Seconds from launch to a recorded exit code of 0."""
    folder.mkdir(parents=True)
    spec = LaunchSpec(argv=argv, cwd=folder, env={}, log_path=folder / "job.log", exit_path=folder / "exit")
    started = time.perf_counter()
    handle = executor.launch(spec)
    deadline = started + JOB_TIMEOUT_S
    while (outcome := executor.outcome(handle, spec.exit_path)) is None:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"no outcome within {JOB_TIMEOUT_S} s: {spec.log_path.read_text()}")
        time.sleep(POLL_S)
    elapsed = time.perf_counter() - started
    if outcome.exit_code != 0:
        raise RuntimeError(f"the job failed ({outcome}): {spec.log_path.read_text()}")
    return elapsed


def measure(name: str, run: Iterator[float] | None, count: int, warmups: int) -> list[float]:
    assert run is not None
    for _ in range(warmups):
        next(run)
    values = [next(run) for _ in range(count)]
    print(f"{name:>6}: median {ms(statistics.median(values)):8.1f} ms   p90 {ms(p90(values)):8.1f} ms", flush=True)
    return values


def jobs(executor: Executor, root: Path, argv: list[str]) -> Iterator[float]:
    for index in range(1_000_000):
        yield run_job(executor, root / str(index), argv)


def directs(argv: list[str]) -> Iterator[float]:
    while True:
        yield run_direct(argv)


@contextlib.contextmanager
def ray_address(given: str | None) -> Iterator[str]:
    if given:
        yield given
        return
    from tests.ray.conftest import running_cluster

    print("starting a one-node Ray cluster on 127.0.0.1 ...", flush=True)
    with running_cluster(nodes=1) as cluster:
        yield cluster.address


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--warmups", type=int, default=2)
    parser.add_argument("--address", help="a running cluster's dashboard; default: start one here")
    args = parser.parse_args(argv)
    command = direct_argv(COMMAND)
    root = Path(tempfile.mkdtemp(prefix="openarts-ray-bench-"))
    print(machine_line(), flush=True)
    try:
        direct = measure("direct", directs(command), args.jobs, args.warmups)
        local_executor = LocalExecutor()
        try:
            local = measure("local", jobs(local_executor, root / "local", command), args.jobs, args.warmups)
        finally:
            close = getattr(local_executor, "close", None)  # a long-lived launcher, where the backend has one
            if close is not None:
                close()
        from openarts.compute.ray_executor import RayExecutor

        with ray_address(args.address) as address:
            ray_executor = RayExecutor(address)
            try:
                on_ray = measure("ray", jobs(ray_executor, root / "ray", command), args.jobs, args.warmups)
            finally:
                ray_executor.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    base = statistics.median(direct)
    local_median, ray_median = statistics.median(local), statistics.median(on_ray)
    print(f"overhead over direct: local {ms(local_median - base):.1f} ms, ray {ms(ray_median - base):.1f} ms")
    print(f"ratio ray / local: {ray_median / local_median:.1f}   ratio ray / direct: {ray_median / base:.1f}")
    print(machine_line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
