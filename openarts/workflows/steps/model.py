"""Model steps (reference 6.2): register a model from the step's input folder and follow it until it is
published.

The create body is the step's resolved ``properties`` (``model_name``, ``model_type``, ...; the v1 create
body), completed by the ``model_config`` of its ``model`` outputs (the SDK's ``ModelOutput``) where the
properties are silent. ``source_location`` is the step's first input with an ``obs_url`` (a folder holding
``model/``: usually ``$ref/consumptions/<job step>/<output>``) unless the properties name one (or a
``source_job_id``). Without ``model_version`` the version auto-increments from the newest one of that name.

The model is created through the model service as the execution's user; the step ends ``completed`` when
the model is ``published`` and ``failed`` with the model's reason when publishing fails. Each output of
type ``model`` (every output, when none is typed) gets ``model_id``, ``model_name`` and ``model_version``
in its ``config``; ``instance_id`` is ``{"model_id": ...}`` as a JSON string, as in the seed.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from pydantic import ValidationError
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from openarts.core.errors import ApiError
from openarts.models import service as models
from openarts.models.schemas import CreateModel
from openarts.models.tables import Model
from openarts.workflows import steps
from openarts.workflows.steps.base import StepContext, StepProblem

# Keys of the SDK's ModelConfig that are not fields of the v1 create body.
_OUTPUT_ONLY = ("model_id",)
FIRST_VERSION = "1.0.0"


def wake_after_commit(session: Session, wake: Any) -> None:
    """Set ``wake`` (a family controller's event) once the engine's transaction commits: a controller woken
    before would look too early and sleep until its next idle poll."""
    event.listen(session, "after_commit", lambda _session: wake.set(), once=True)


def obs_url_of(value: Any) -> str | None:
    """The folder an input's resolved value names: a string, ``{"obs_url"}`` or a job output config."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict):
        url = value.get("obs_url")
        return url if isinstance(url, str) and url else None
    return None


def _output_config(output: dict[str, Any]) -> dict[str, Any]:
    config = output.get("model_config") or output.get("config") or {}
    return {k: v for k, v in config.items() if k not in _OUTPUT_ONLY} if isinstance(config, dict) else {}


def _model_outputs(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    typed = [output for output in outputs if output.get("type") == "model"]
    return typed or outputs


def next_version(session: Session, project_id: str, name: str) -> str:
    """One more than the newest ``N.N.N`` of the name (parts 0-99, as the model service requires)."""
    versions = session.scalars(select(Model.version).where(Model.project_id == project_id, Model.name == name))
    newest: tuple[int, int, int] | None = None
    for text in versions:
        try:
            parts = tuple(int(part) for part in text.split("."))
        except ValueError:
            continue
        if len(parts) == 3 and (newest is None or parts > newest):
            newest = (parts[0], parts[1], parts[2])
    if newest is None:
        return FIRST_VERSION
    major, minor, patch = newest
    patch += 1
    if patch > 99:
        minor, patch = minor + 1, 0
    if minor > 99:
        major, minor = major + 1, 0
    return f"{major}.{minor}.{patch}"


def model_body(ctx: StepContext) -> dict[str, Any]:
    """The v1 create body: outputs' model_config, then the properties over it, then the input folder."""
    body: dict[str, Any] = {}
    for output in _model_outputs(ctx.resolved.get("outputs") or []):
        body.update(_output_config(output))
    body.update(copy.deepcopy(ctx.resolved.get("properties") or {}))
    if not body.get("source_location") and not body.get("source_job_id"):
        for item in ctx.resolved.get("inputs") or []:
            url = obs_url_of(item.get("value"))
            if url is not None:
                body["source_location"] = url
                break
    body.setdefault("workspace_id", ctx.execution.workspace_id)
    body.setdefault("description", f"workflow {ctx.execution.name} step {ctx.step.step_name}"[:100])
    # Descriptions may not hold some characters; a generated one must never refuse the body.
    body["description"] = "".join(c for c in str(body["description"]) if c not in "&!'\"<>=")
    return body


class ModelStep:
    name = "model"
    starting_status = "creating"
    cacheable = True
    polls = True

    def validate(self, step: dict[str, Any]) -> None:
        properties = step.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise StepProblem("a model step's properties must be an object: the model's create body")
        named = dict(properties or {})
        for output in _model_outputs(step.get("outputs") or []):
            named = {**_output_config(output), **named}
        if not named.get("model_name"):
            raise StepProblem("a model step needs properties.model_name (or an output's model_config.model_name)")
        has_source = named.get("source_location") or named.get("source_job_id")
        if not has_source and not step.get("inputs"):
            raise StepProblem("a model step needs an input: the folder holding model/ (e.g. a job step's output)")

    def start(self, ctx: StepContext) -> str:
        if ctx.owner is None:
            return ctx.fail("ModelArts.0104", "the user who started the execution no longer exists")
        raw = model_body(ctx)
        if not raw.get("source_location") and not raw.get("source_job_id"):
            ctx.step.error_info = {
                "error_code": "ModelArts.3017",
                "error_message": "no input of the step names a folder (obs_url) holding model/",
            }
            return "create_failed"
        if not raw.get("model_version") and isinstance(raw.get("model_name"), str):
            raw["model_version"] = next_version(ctx.session, ctx.owner.project_id, raw["model_name"])
        try:
            body = CreateModel.model_validate(raw)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            ctx.step.error_info = {"error_code": "ModelArts.3036", "error_message": f"{where}: {first['msg']}"}
            return "create_failed"
        try:
            # A savepoint: a refused create leaves nothing half-written in the engine's transaction.
            with ctx.session.begin_nested():
                created = models.create_model(ctx.session, ctx.services.settings, ctx.owner, body, ctx.now_ms)
        except ApiError as exc:
            ctx.step.error_info = {"error_code": exc.code, "error_message": exc.message}
            return "create_failed"
        model_id = str(created["model_id"])
        ctx.step.state = {**ctx.step.state, "model_id": model_id}
        ctx.step.instance_id = json.dumps({"model_id": model_id})
        found = {"model_id": model_id, "model_name": body.model_name, "model_version": body.model_version}
        outputs = [dict(output) for output in ctx.step.outputs]
        targets = {id(o) for o in _model_outputs(outputs)}
        for output in outputs:
            if id(output) in targets:
                output["config"] = {**(output.get("config") or {}), **found}
        ctx.step.outputs = outputs
        wake_after_commit(ctx.session, models.wake_controller)
        return "created"

    def poll(self, ctx: StepContext) -> str:
        model_id = ctx.step.state.get("model_id")
        if ctx.owner is None or not model_id:
            return ctx.fail("ModelArts.0104", "the step's model or its user no longer exists")
        try:
            status, reason = models.model_status(ctx.session, ctx.owner, str(model_id))
        except ApiError:
            if ctx.step.status == "stopping":
                return "stopped"
            return ctx.fail("ModelArts.3001", f"the step's model {model_id} was deleted")
        if status == models.PUBLISHED:
            return "completed"
        if status in (models.FAILED, "building_failed"):
            return ctx.fail("ModelArts.3006", reason or f"model {model_id} failed to publish")
        return "stopped" if ctx.step.status == "stopping" else "running"

    def stop(self, ctx: StepContext) -> str:
        # Publishing is a short check and copy that cannot be interrupted; the model stays registered
        # (as on ModelArts, a stopped workflow leaves what its steps made).
        return "stopped"


steps.register(ModelStep())
