"""Job steps: a real training job made from the step's ``properties`` (a v2 create body, placeholders
resolved), with the step's ``obs`` inputs and outputs added as the algorithm's inputs and outputs. The job
is created through the training service on behalf of the execution's user; the step ends as the job does.

Each attempt's job is named ``<metadata.name>-<8 hex>``: job names are unique in a workspace, and every
run of a workflow (and every retry of a step) makes a new job.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from openarts.core.errors import ApiError
from openarts.storage.store import ObjectStore
from openarts.training.jobs import service as jobs
from openarts.training.jobs.schemas import CreateJob
from openarts.training.jobs.tables import TrainingJob
from openarts.workflows import steps
from openarts.workflows.steps.base import StepContext, StepProblem

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
PHASE_TO_STATUS = {
    "Creating": "created",
    "Pending": "created",
    "Running": "running",
    "Terminating": "stopping",
    "Completed": "completed",
    "Failed": "failed",
    "Abnormal": "failed",
    "Terminated": "stopped",
}


def _job_name(base: str, step_name: str) -> str:
    base = _UNSAFE.sub("-", base or step_name).strip("-") or "workflow-step"
    return f"{base[:55]}-{uuid.uuid4().hex[:8]}"


def _channel(name: str, obs_url: str) -> dict[str, Any]:
    return {"name": name, "remote": {"obs": {"obs_url": obs_url}}}


def job_body(ctx: StepContext) -> dict[str, Any]:
    """The create body: the resolved properties, the step's obs inputs and outputs, a fresh name."""
    body = copy.deepcopy(ctx.resolved.get("properties") or {})
    body.setdefault("kind", "job")
    metadata = body.setdefault("metadata", {})
    metadata["name"] = _job_name(str(metadata.get("name") or ""), ctx.step.step_name)
    metadata.setdefault("workspace_id", ctx.execution.workspace_id)
    metadata.setdefault("description", f"workflow step {ctx.step.step_name} of {ctx.execution.name}")
    resource = (body.get("spec") or {}).get("resource")
    if isinstance(resource, dict) and resource.get("policy") == "regular":
        # The seed's job steps spell out the only policy there is; the training create body has no such
        # field (a job's response adds it back).
        resource.pop("policy")
    algorithm = body.setdefault("algorithm", {})
    for field, items in (("inputs", ctx.resolved.get("inputs") or []), ("outputs", ctx.resolved.get("outputs") or [])):
        declared = {channel.get("name") for channel in algorithm.get(field) or []}
        for item in items:
            where = item.get("value") if field == "inputs" else item.get("config")
            url = where.get("obs_url") if isinstance(where, dict) else where if isinstance(where, str) else None
            if item.get("type") == "obs" and isinstance(url, str) and item["name"] not in declared:
                algorithm.setdefault(field, []).append(_channel(item["name"], url))
    return body


class JobStep:
    name = "job"
    starting_status = "creating"
    cacheable = True
    polls = True

    def validate(self, step: dict[str, Any]) -> None:
        if not isinstance(step.get("properties"), dict) or not step["properties"]:
            raise StepProblem("a job step needs properties: the training job's create body")

    def start(self, ctx: StepContext) -> str:
        if ctx.owner is None:
            return ctx.fail("ModelArts.0104", "the user who started the execution no longer exists")
        try:
            body = CreateJob.model_validate(job_body(ctx))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            ctx.step.error_info = {"error_code": "ModelArts.2788", "error_message": f"{where}: {first['msg']}"}
            return "create_failed"
        settings = ctx.services.settings
        try:
            # A savepoint: a refused create leaves nothing half-written in the engine's transaction.
            with ctx.session.begin_nested():
                created = jobs.create(ctx.session, settings, ObjectStore(settings), ctx.owner, body, ctx.now_ms)
        except ApiError as exc:
            ctx.step.error_info = {"error_code": exc.code, "error_message": exc.message}
            return "create_failed"
        job_id = created["metadata"]["id"]
        ctx.step.state = {**ctx.step.state, "job_id": job_id, "job_name": body.metadata.name}
        ctx.step.instance_id = json.dumps({"job_id": job_id})
        return "created"

    def _job(self, ctx: StepContext) -> TrainingJob | None:
        job_id = ctx.step.state.get("job_id")
        return ctx.session.scalar(select(TrainingJob).where(TrainingJob.id == job_id)) if job_id else None

    def poll(self, ctx: StepContext) -> str:
        job = self._job(ctx)
        if job is None or job.delete_requested:
            if ctx.step.status == "stopping":
                return "stopped"
            return ctx.fail("ModelArts.2775", "the step's training job was deleted")
        status = PHASE_TO_STATUS.get(job.phase, "running")
        if status == "failed":
            ctx.step.error_info = {"error_code": "ModelArts.2950", "error_message": job.message or "the job failed"}
        return status

    def stop(self, ctx: StepContext) -> str:
        job = self._job(ctx)
        if job is None:
            return "stopped"
        if job.phase in jobs.STOPPABLE:
            jobs.request_stop(ctx.session, job, ctx.now_ms, "Stopped by its workflow.")
        return "stopping" if job.phase == "Terminating" else PHASE_TO_STATUS.get(job.phase, "stopped")


steps.register(JobStep())
