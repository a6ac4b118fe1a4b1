"""What the workflow engine adds: a chain of condition steps, and a chain of job steps, against the bare work.

What is measured
----------------
The real OpenArts server (``openarts serve``, a fresh SQLite data directory, ``OPENARTS_COMPUTE_CPUS=4``)
is driven with the official SDK, as a user would; the machinery (server start, job clean-up) is
``bench/job_overhead.py``'s.

1. Conditions. A workflow of ``--conditions`` condition steps (``1 == 1``), each depending on the one
   before, is run ``--rounds`` times. Each run is timed from just before the create-execution call to the
   moment this client sees it ``completed`` (polling every 10 ms). The bare work of a condition is nothing,
   so the engine time per step is ``median(run) / steps``; it includes the create call itself.

2. Jobs. A workflow of ``--jobs`` job steps, each running ``python -c pass`` after the one before, is run
   ``--rounds`` times, timed the same way. The baseline is the same ``--jobs`` commands run one after the
   other with ``subprocess.run``, in the same process run. The overhead per job step is
   ``(median(run) - median(direct)) / jobs``: everything the platform adds to one step (the engine
   starting the job, the training controller admitting, staging and running it, the engine noticing its
   end and starting the next), i.e. the job's own platform overhead (see ``bench/job_overhead.py``) plus
   the workflow engine's.

Targets: at most 20 ms of engine time per condition step, at most 300 ms per job step beyond the job's
own run. The script prints the figures and verdicts and exits 0 either way (non-zero only when the
server does not start or a run does not complete).

Usage: ``python bench/workflow_overhead.py [--conditions 100] [--jobs 10] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import job_overhead as jobs  # the sibling benchmark's server and clean-up machinery
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkflowExecutionRequest,
    CreateWorkflowRequest,
    ShowWorkflowExecutionRequest,
)

RUN_TIMEOUT_S = 120.0
POLL_S = 0.01
TARGET_CONDITION_MS = 20.0
TARGET_JOB_MS = 300.0


def condition_chain(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"c{i:03d}",
            "type": "condition",
            "conditions": [{"type": "==", "left": 1, "right": 1}],
            "depend_steps": [f"c{i - 1:03d}"] if i else [],
        }
        for i in range(count)
    ]


def job_chain(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"j{i:03d}",
            "type": "job",
            "properties": {
                "kind": "job",
                "metadata": {"name": f"bench-j{i:03d}"},
                "algorithm": {"command": jobs.NOOP_COMMAND},
                "spec": {"resource": {"flavor_id": jobs.FLAVOR, "node_count": 1}},
            },
            "depend_steps": [f"j{i - 1:03d}"] if i else [],
        }
        for i in range(count)
    ]


def run_once(client: Any, workflow_id: str) -> float:
    """Seconds from the create-execution call to seeing the execution completed."""
    started = time.perf_counter()
    created = client.create_workflow_execution(CreateWorkflowExecutionRequest(workflow_id=workflow_id, body={}))
    request = ShowWorkflowExecutionRequest(workflow_id=workflow_id, execution_id=created.execution_id)
    status = created.status
    while status not in ("completed", "stopped", "abnormal"):
        if time.perf_counter() - started > RUN_TIMEOUT_S:
            raise jobs.BenchError(f"execution {created.execution_id} still {status} after {RUN_TIMEOUT_S:g} s")
        time.sleep(POLL_S)
        status = client.show_workflow_execution(request).status
    elapsed = time.perf_counter() - started
    if status != "completed":
        raise jobs.BenchError(f"execution {created.execution_id} ended {status}")
    return elapsed


def benchmark(args: argparse.Namespace, work_dir: Path, servers: list[jobs.Server]) -> None:
    server = jobs.launch_server(work_dir, servers)
    jobs.wait_until_healthy(server)
    client = jobs.sdk_client(server)
    tag = uuid.uuid4().hex[:6]
    print(jobs.machine_line())
    conditions = client.create_workflow(
        CreateWorkflowRequest(body={"name": f"bench-conditions-{tag}", "steps": condition_chain(args.conditions)})
    ).workflow_id
    chain = client.create_workflow(
        CreateWorkflowRequest(body={"name": f"bench-jobs-{tag}", "steps": job_chain(args.jobs)})
    ).workflow_id
    run_once(client, conditions)  # warm-up: first imports, first queries
    condition_runs = [run_once(client, conditions) for _ in range(args.rounds)]
    job_runs = [run_once(client, chain) for _ in range(args.rounds)]
    argv = jobs.direct_argv(jobs.NOOP_COMMAND)
    jobs.run_direct(argv)
    direct_runs = [sum(jobs.run_direct(argv) for _ in range(args.jobs)) for _ in range(args.rounds)]

    per_condition = jobs.ms(statistics.median(condition_runs)) / args.conditions
    per_job = jobs.ms(statistics.median(job_runs) - statistics.median(direct_runs)) / args.jobs
    print(f"\n{'chain':<44} {'rounds':>6} {'median s':>9} {'min s':>7} {'max s':>7}")
    for label, values in (
        (f"{args.conditions} condition steps (create->seen completed)", condition_runs),
        (f"{args.jobs} job steps `{jobs.NOOP_COMMAND}`", job_runs),
        (f"{args.jobs} x `{jobs.NOOP_COMMAND}` directly", direct_runs),
    ):
        print(f"{label:<44} {len(values):>6} {statistics.median(values):>9.3f} {min(values):>7.3f} {max(values):>7.3f}")
    jobs.print_server_log(server)
    print(f"\n{jobs.machine_line()} (at the end)")
    print(f"engine time per condition step: {per_condition:.1f} ms (target <= {TARGET_CONDITION_MS:.0f} ms)")
    print(f"overhead per job step: {per_job:.0f} ms (target <= {TARGET_JOB_MS:.0f} ms)")
    print(f"ratios to target: conditions {per_condition / TARGET_CONDITION_MS:.2f}, jobs {per_job / TARGET_JOB_MS:.2f}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--conditions", type=int, default=100, help="condition steps in the chain")
    parser.add_argument("--jobs", type=int, default=10, help="job steps in the chain")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each chain (medians are reported)")
    args = parser.parse_args(argv)
    if args.conditions < 1 or args.jobs < 1 or args.rounds < 1:
        parser.error("--conditions, --jobs and --rounds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    return jobs.run(benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
