"""A training job as the API shows it (the SDK's ``JobResponse``)."""

from __future__ import annotations

from typing import Any

from openarts.compute.flavors import Flavor
from openarts.training.jobs.tables import TrainingJob

ENDED = ("Completed", "Failed", "Terminated", "Abnormal")


def node_count(job: TrainingJob) -> int:
    """On how many nodes the job runs (its plan's; plans stored before it was recorded ran on one)."""
    return int(job.launch.get("node_count") or 1)


def task_names(job: TrainingJob) -> list[str]:
    """One task per node, named as ModelArts names them: worker-0 (rank 0) .. worker-N-1."""
    return [f"worker-{rank}" for rank in range(node_count(job))]


def duration_ms(job: TrainingJob, now_ms: int) -> int:
    if not job.start_time:
        return 0
    return max(0, (job.end_time or now_ms) - job.start_time)


def job_to_wire(job: TrainingJob, flavor: Flavor | None, now_ms: int) -> dict[str, Any]:
    metadata: dict[str, Any] = {
        "id": job.id,
        "name": job.name,
        "workspace_id": job.workspace_id,
        "description": job.description,
        "create_time": job.create_time,
        "user_name": job.user_name,
        "annotations": job.annotations or {},
    }
    if job.experiment:
        metadata["training_experiment_reference"] = job.experiment
    tasks = task_names(job)
    status: dict[str, Any] = {
        "phase": job.phase,
        "secondary_phase": job.secondary_phase,
        "duration": duration_ms(job, now_ms),
        "start_time": job.start_time,
        "node_count_metrics": None,
        "tasks": tasks,
    }
    if job.phase in ENDED:
        # The ranks' own exit codes are not kept: each task shows the job's (rank 0's, else the first
        # rank's that failed: see compute/ray_entry.py) and its message.
        status["task_statuses"] = [{"task": task, "exit_code": job.exit_code, "message": job.message} for task in tasks]
    if job.start_time:
        record: dict[str, Any] = {"start_at": job.start_time // 1000, "start_type": "init_or_rescheduled"}
        if job.end_time:
            record["end_at"] = job.end_time // 1000
        status["running_records"] = [record]
    resource = dict(job.spec.get("resource", {}))
    resource["policy"] = "regular"
    if flavor is not None:
        wire = flavor.to_wire()
        resource["flavor_name"] = flavor.flavor_name
        resource["flavor_detail"] = {
            "flavor_type": wire["flavor_type"],
            "billing": wire["billing"],
            "flavor_info": wire["flavor_info"],
        }
    return {
        "kind": job.kind,
        "metadata": metadata,
        "status": status,
        "algorithm": job.algorithm,
        "spec": {**job.spec, "resource": resource},
        "endpoints": {},
    }
