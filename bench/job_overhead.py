"""What running a command as an OpenArts training job costs, against running the same command directly.

What is measured
----------------
The real OpenArts server (``openarts serve``: Uvicorn, one worker, a fresh SQLite data directory) runs
with ``OPENARTS_COMPUTE_CPUS=4`` and ``OPENARTS_COMPUTE_MEMORY_GB=32``, so two ``modelarts.vm.cpu.2u``
jobs (2 CPUs, 8 GB each) fit at a time: a capacity of 2. Jobs are created with the official SDK, from a
``command`` (no code folder, no inputs, no outputs), as a user would.

1. Overhead per job. After ``--warmups`` jobs that are not counted, ``--jobs`` jobs running
   ``python -c pass`` are created one after the other. Each is timed from just before the create call to
   the moment this client sees it ``Completed``, polling ``show_training_job_details`` every 10 ms, so up
   to 10 ms of polling granularity (plus one request) is part of every figure. The baseline is the same
   command run ``--jobs`` times directly with ``subprocess.run`` (``python`` being this interpreter, which
   is also the server's and therefore the job's). The overhead is ``median(job) - median(direct)``: all
   the platform adds to one job (the create call, the controller noticing and admitting the job, staging
   its folder, starting the runner process in front of the command, noticing the exit, writing the final
   status). A breakdown splits each job at the times the server records (``create_time``, ``start_time``
   when the row turns Running, ``start_time + duration`` when the end is recorded; whole milliseconds of
   this machine's wall clock): the create call, controller pickup and admission, the run itself (staging,
   runner and command start, the command, exit detection, output upload), and the final write plus the
   client's polling.

2. Throughput under queueing. ``--queue`` jobs running ``python -c "import time; time.sleep(0.2)"`` are
   created back to back (so most of them wait in the queue) and watched through ``list_training_jobs``
   with a name ``like`` filter every 50 ms (so up to 50 ms of polling granularity is in the figure), from
   the start of the first create call to the poll that sees the last one ``Completed``. The baseline
   runs the same commands directly, two at a time (a pool of two threads each calling ``subprocess.run``).
   The ratio platform / direct says how much of the machine a busy queue loses to the platform.

The jobs, the server and this client share the machine, and the server is told it has 4 CPUs whatever
it really has: on a smaller or busy machine the platform's figures include waiting for a CPU, which the
direct baseline (two processes) mostly does not. The CPU count and load average are printed at the start
and the end so that a reader can judge. An interrupted run stops the server, kills the jobs it left
running (jobs are built to outlive their server) and removes its temporary folder.

Why
---
The targets are an overhead of at most 300 ms per job, and a ratio of at most 1.3 for the queue: a short
job must not be dominated by the platform, and a full queue must keep the machine busy. The script
reports the figures and both verdicts; it exits 0 whether or not the targets are met, and non-zero only
when the server does not start or a job does not complete.

Usage: ``python bench/job_overhead.py [--jobs 20] [--queue 50] [--warmups 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import SdkException
from huaweicloudsdkmodelarts.v1 import (
    CreateTrainingJobRequest,
    Filter,
    Job,
    JobAlgorithm,
    JobMetadata,
    JobSearches,
    ListTrainingJobsRequest,
    ModelArtsClient,
    ShowTrainingJobDetailsRequest,
    Spec,
    SpecResource,
)

HOST = "127.0.0.1"
FLAVOR = "modelarts.vm.cpu.2u"  # 2 CPUs, 8 GB: two fit in the 4 CPUs and 32 GB given to the server
SERVER_ENV = {"OPENARTS_COMPUTE_CPUS": "4", "OPENARTS_COMPUTE_MEMORY_GB": "32"}
CAPACITY = 2
NOOP_COMMAND = "python -c pass"
SLEEP_COMMAND = 'python -c "import time; time.sleep(0.2)"'
ENDED = ("Completed", "Failed", "Terminated", "Abnormal")
SHOW_POLL_S = 0.01
LIST_POLL_S = 0.05
LIST_PAGE = 50  # the most training-job-searches returns in one page
STARTUP_TIMEOUT_S = 60.0
JOB_TIMEOUT_S = 60.0
TARGET_OVERHEAD_MS = 300.0
TARGET_RATIO = 1.3


class BenchError(RuntimeError):
    """The server did not start, or a job did not complete."""


@dataclass
class Server:
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path
    stderr_path: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


@dataclass(frozen=True)
class JobTiming:
    """One job of part 1: client-side seconds, and the server's own timestamps (epoch ms)."""

    total_s: float  # create call started -> seen Completed
    create_call_s: float  # the create call alone
    sent_ms: float  # epoch ms at which the create call started (this machine's wall clock)
    seen_ms: float  # epoch ms at which it was seen Completed
    create_time_ms: int  # the server's create_time
    start_time_ms: int  # the server's start_time (row set to Running, just before staging and launch)
    end_time_ms: int  # start_time + duration: when the server recorded the end


@dataclass(frozen=True)
class QueueResult:
    platform_s: float
    direct_s: float

    @property
    def ratio(self) -> float:
        return self.platform_s / self.direct_s if self.direct_s else 0.0


# --------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def launch_server(work_dir: Path, servers: list[Server]) -> Server:
    """Start ``openarts serve`` in its own session (Ctrl-C reaches only us; we stop it), logging to files.

    It joins ``servers`` at once, before anyone waits for it, so the caller's cleanup stops it even when
    the start is interrupted.
    """
    data_dir = work_dir / "data"
    data_dir.mkdir()
    # Only the temporary data directory: no inherited OPENARTS_* may point at a real database or store.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENARTS_")}
    env.update(SERVER_ENV, OPENARTS_DATA_DIR=str(data_dir))
    port = free_port()
    argv = [sys.executable, "-m", "openarts", "serve", "--host", HOST, "--port", str(port), "--log-level", "warning"]
    stderr_path = work_dir / "server.stderr.log"
    with open(work_dir / "server.stdout.log", "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
    servers.append(Server(port, process, data_dir, stderr_path))
    return servers[-1]


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def runner_pids(data_dir: Path) -> list[int]:
    """Job runners still recording into ``data_dir``: found by their command line in ``/proc``."""
    marker = str(data_dir / "jobs") + os.sep
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(arg.decode(errors="replace").startswith(marker) for arg in argv):
            pids.append(int(entry.name))
    return pids


def stop_leftover_jobs(server: Server) -> None:
    """SIGKILL the process groups of jobs still running once the server is stopped (an interrupted run).

    Jobs are meant to outlive their server, so stopping it leaves them running; one that ended after
    the temporary folder was removed would create its job folder again.
    """
    pids = runner_pids(server.data_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)  # a runner leads its own process group: the job goes with it
    deadline = time.monotonic() + 5.0
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        time.sleep(0.01)


def server_stderr(server: Server, max_lines: int = 20) -> list[str]:
    try:
        lines = server.stderr_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return lines[-max_lines:]


def wait_until_healthy(server: Server) -> None:
    """Poll ``/health`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise BenchError(f"the server exited with code {server.process.returncode} (its log follows)")
        with contextlib.suppress(OSError), urllib.request.urlopen(server.url + "/health", timeout=2) as response:
            if response.status == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"the server did not answer 200 on /health within {STARTUP_TIMEOUT_S:g} s")


def sdk_client(server: Server) -> Any:
    creds: dict[str, Any] = json.loads((server.data_dir / "admin-credentials.json").read_text())
    credentials = BasicCredentials(creds["access_key"], creds["secret_key"], creds["project_id"])
    return ModelArtsClient.new_builder().with_credentials(credentials).with_endpoint(server.url).build()


# ----------------------------------------------------------------------------------------------- jobs


def job_request(name: str, command: str) -> CreateTrainingJobRequest:
    return CreateTrainingJobRequest(
        body=Job(
            kind="job",
            metadata=JobMetadata(name=name, workspace_id="0", description="bench/job_overhead.py"),
            algorithm=JobAlgorithm(command=command),
            spec=Spec(resource=SpecResource(flavor_id=FLAVOR, node_count=1)),
        )
    )


def check_completed(name: str, status: Any) -> None:
    """A job that ended otherwise than Completed fails the benchmark, with what its status says."""
    if status.phase != "Completed":
        notes = [f"exit code {t.exit_code}: {t.message}" for t in status.task_statuses or []]
        raise BenchError(
            f"job {name} ended {status.phase} ({status.secondary_phase}): {'; '.join(notes) or 'no message'}"
        )


def run_job(client: Any, name: str, command: str) -> JobTiming:
    """Create one job and poll it every 10 ms until it has ended; it must have Completed."""
    sent_ms = time.time() * 1000
    started = time.perf_counter()
    job_id = client.create_training_job(job_request(name, command)).metadata.id
    create_call_s = time.perf_counter() - started
    deadline = started + JOB_TIMEOUT_S
    request = ShowTrainingJobDetailsRequest(training_job_id=job_id)
    while True:
        shown = client.show_training_job_details(request)
        if shown.status.phase in ENDED:
            total_s, seen_ms = time.perf_counter() - started, time.time() * 1000
            break
        if time.perf_counter() > deadline:
            raise BenchError(f"job {name} still {shown.status.phase} after {JOB_TIMEOUT_S:g} s")
        time.sleep(SHOW_POLL_S)
    check_completed(name, shown.status)
    start_ms = int(shown.status.start_time)
    return JobTiming(
        total_s=total_s,
        create_call_s=create_call_s,
        sent_ms=sent_ms,
        seen_ms=seen_ms,
        create_time_ms=int(shown.metadata.create_time),
        start_time_ms=start_ms,
        end_time_ms=start_ms + int(shown.status.duration),
    )


def list_jobs(client: Any, prefix: str, total: int) -> list[Any]:
    """Every job whose name contains ``prefix``, page by page."""
    like = Filter(key="name", operator="like", value=[prefix])
    items: list[Any] = []
    while len(items) < total:
        body = JobSearches(filters=[like], offset=len(items), limit=LIST_PAGE, order="asc")
        page = client.list_training_jobs(ListTrainingJobsRequest(body=body)).items or []
        if not page:
            break
        items.extend(page)
    return items


def wait_all_ended(client: Any, prefix: str, total: int, started: float, timeout_s: float) -> list[Any]:
    deadline = started + timeout_s
    while True:
        items = list_jobs(client, prefix, total)
        if len(items) == total and all(item.status.phase in ENDED for item in items):
            return items
        if time.perf_counter() > deadline:
            waiting = sum(item.status.phase not in ENDED for item in items)
            raise BenchError(f"{waiting} of {total} queued jobs still not ended after {timeout_s:g} s")
        time.sleep(LIST_POLL_S)


def run_queue(client: Any, prefix: str, count: int) -> float:
    """Create ``count`` sleeping jobs back to back; seconds from the first create to all seen Completed."""
    started = time.perf_counter()
    for i in range(count):
        client.create_training_job(job_request(f"{prefix}-{i:03d}", SLEEP_COMMAND))
    items = wait_all_ended(client, prefix, count, started, JOB_TIMEOUT_S + count * 2.0)
    elapsed = time.perf_counter() - started
    for item in items:
        check_completed(item.metadata.name, item.status)
    return elapsed


# --------------------------------------------------------------------------------------------- direct


def direct_argv(command: str) -> list[str]:
    """The argv the server runs for ``command``: split like a shell, ``python`` being this interpreter."""
    argv = shlex.split(command)
    if argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def run_direct(argv: list[str]) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchError(f"{argv} exited with code {result.returncode}")
    return elapsed


def run_direct_pool(argv: list[str], count: int, workers: int) -> float:
    """``count`` runs of ``argv``, ``workers`` at a time; wall seconds for all of them."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda _: run_direct(argv), range(count)))
    return time.perf_counter() - started


# ------------------------------------------------------------------------------------------------ report


def ms(seconds: float) -> float:
    return seconds * 1000.0


def p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10, method="inclusive")[-1] if len(values) > 1 else values[0]


def print_overhead(jobs: list[JobTiming], direct: list[float]) -> float:
    """The part-1 table and breakdown; returns the overhead in ms."""
    job_ms = [ms(t.total_s) for t in jobs]
    direct_ms = [ms(s) for s in direct]
    print(f"\n{'python -c pass':<26} {'n':>3} {'median ms':>10} {'p90 ms':>8} {'min ms':>8} {'max ms':>8}")
    for label, values in (("as a job (create->seen)", job_ms), ("direct (subprocess.run)", direct_ms)):
        row = f"{statistics.median(values):>10.1f} {p90(values):>8.1f} {min(values):>8.1f} {max(values):>8.1f}"
        print(f"{label:<26} {len(values):>3} {row}")
    phases: list[tuple[str, Callable[[JobTiming], float]]] = [
        ("create call (client)", lambda t: ms(t.create_call_s)),
        ("sent -> create_time", lambda t: t.create_time_ms - t.sent_ms),
        ("create_time -> start_time", lambda t: t.start_time_ms - t.create_time_ms),
        ("start_time -> end_time", lambda t: t.end_time_ms - t.start_time_ms),
        ("end_time -> seen Completed", lambda t: t.seen_ms - t.end_time_ms),
    ]
    print("\nbreakdown of a job (server timestamps are whole ms; medians, ms):")
    for label, of in phases:
        values = [of(t) for t in jobs]
        print(f"  {label:<28} {statistics.median(values):>8.1f}   (p90 {p90(values):.1f})")
    return statistics.median(job_ms) - statistics.median(direct_ms)


def print_queue(result: QueueResult, count: int) -> None:
    print(f"\n{count} x sleep(0.2), capacity {CAPACITY}        wall s")
    print(f"  {'as jobs (first create->last seen)':<36} {result.platform_s:>7.2f}")
    print(f"  {'direct, pool of 2 threads':<36} {result.direct_s:>7.2f}")
    ideal = count / CAPACITY * 0.2
    print(f"  (sleep alone, {CAPACITY} at a time: {ideal:.2f} s)")


def machine_line() -> str:
    """How many CPUs there are and how busy the machine is: the jobs, the server and this client share them."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"machine: {os.cpu_count()} CPUs, load average {load}"


def print_server_log(server: Server) -> None:
    lines = server_stderr(server)
    if lines:
        print(f"\nserver stderr (last {len(lines)} lines):")
        print(textwrap.indent("\n".join(lines), "  "))


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--jobs", type=int, default=20, help="measured python -c pass jobs (and direct runs)")
    parser.add_argument("--queue", type=int, default=50, help="sleeping jobs queued at capacity 2")
    parser.add_argument("--warmups", type=int, default=2, help="jobs run first and not counted")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.queue < 1 or args.warmups < 0:
        parser.error("--jobs and --queue must be >= 1, --warmups >= 0")
    return args


@contextlib.contextmanager
def work_directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="openarts-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def measure_overhead(client: Any, args: argparse.Namespace, tag: str) -> tuple[list[JobTiming], list[float]]:
    for i in range(args.warmups):
        run_job(client, f"bench-warmup-{tag}-{i:02d}", NOOP_COMMAND)
    jobs = [run_job(client, f"bench-pass-{tag}-{i:02d}", NOOP_COMMAND) for i in range(args.jobs)]
    argv = direct_argv(NOOP_COMMAND)
    run_direct(argv)  # warm-up, as for the jobs
    direct = [run_direct(argv) for _ in range(args.jobs)]
    return jobs, direct


def benchmark(args: argparse.Namespace, work_dir: Path, servers: list[Server]) -> None:
    server = launch_server(work_dir, servers)
    wait_until_healthy(server)
    client = sdk_client(server)
    tag = uuid.uuid4().hex[:8]
    print(machine_line())
    print(f"OpenArts on :{server.port} ({', '.join(f'{k}={v}' for k, v in SERVER_ENV.items())}); {FLAVOR} jobs")
    print(
        f"1. {args.jobs} jobs `{NOOP_COMMAND}` one after another ({args.warmups} warm-ups), and {args.jobs} direct runs"
    )
    jobs, direct = measure_overhead(client, args, tag)
    print(
        f"2. {args.queue} jobs `{SLEEP_COMMAND}` queued at capacity {CAPACITY}, and the same run directly 2 at a time"
    )
    platform_s = run_queue(client, f"bench-queue-{tag}", args.queue)
    direct_s = run_direct_pool(direct_argv(SLEEP_COMMAND), args.queue, CAPACITY)
    queue = QueueResult(platform_s, direct_s)

    overhead = print_overhead(jobs, direct)
    print_queue(queue, args.queue)
    print_server_log(server)
    print(f"\n{machine_line()} (at the end)")
    print(f"overhead per job: {overhead:.0f} ms (target <= {TARGET_OVERHEAD_MS:.0f} ms)")
    print(f"{args.queue} jobs at capacity {CAPACITY}: ratio {queue.ratio:.2f} (target <= {TARGET_RATIO})")


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the cleanup in ``main`` runs, as it does on Ctrl-C."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    return run(benchmark, parse_args(argv))


def run(bench: Callable[[argparse.Namespace, Path, list[Server]], None], args: argparse.Namespace) -> int:
    """Run ``bench`` in a temporary folder; whatever happens, stop its servers and their leftover jobs."""
    exit_on_sigterm()
    servers: list[Server] = []
    with work_directory() as work_dir:
        try:
            bench(args, work_dir, servers)
        except (BenchError, SdkException, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            for server in servers:
                print_server_log(server)
            return 1
        finally:
            for server in servers:
                stop_server(server)
                stop_leftover_jobs(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
