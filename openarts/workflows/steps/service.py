"""Service steps (reference 6.3): deploy a real-time service from the step's models, or update an existing
one, and follow it until it is running.

Models come from the step's resolved inputs. An input's value is a model step's output
(``$ref/consumptions/<model step>/<output>``: ``{"model_id", ...}``), a data requirement's value (the
seed's delayed ``model_list``: ``{"model_id"}``, ``{"model_name", "model_version"}`` or
``{"model_list": [...]}``, each entry optionally with ``weight``, ``specification``, ``custom_spec``,
``instance_count`` and ``envs``), or a bare model id. A data requirement's conditions apply: a
``model_name`` condition must match the chosen model, and an ``envs`` condition adds environment variables
(placeholders in it, e.g. ``$ref/consumptions/service_step/service_output/access_address``, resolve
against the steps done so far). An input whose value names a ``service_id`` (or ``properties.service_id``)
makes the step update that service's models instead of deploying a new service.

``properties`` (over the ``service_config`` of its outputs, the SDK's ``ServiceOutput``) is the deploy
body's top level (``service_name``, ``description``, ``infer_type``, ``schedule``: a v1 list or the
workflow's ``format: schedule`` hours, -1 meaning always on) plus defaults for each model entry
(``specification``, ``custom_spec``, ``instance_count``, ``envs``). Without a name the service is named
``<step>-<8 hex>`` so that every run deploys its own.

The step ends ``completed`` when the service is running; each output's ``config`` then holds
``service_id``, ``service_name``, ``infer_type`` and ``access_address``. ``instance_id`` is
``{"service_id": ...}``. A finished step leaves its service running (that is what it is for); stopping
the step while a service it deployed is still deploying stops that service.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.models import service as models
from openarts.models.tables import Model
from openarts.services import service as services
from openarts.services.schemas import DeployService, UpdateService
from openarts.workflows import refs, steps
from openarts.workflows.steps.base import StepContext, StepProblem
from openarts.workflows.steps.model import wake_after_commit
from openarts.workflows.tables import StepExecution

# A model entry with no specification gets this share of the capacity pool: small enough to deploy next
# to a training job on a small machine, large enough for a scikit-learn or small PyTorch model.
DEFAULT_SPECIFICATION = "custom"
DEFAULT_CUSTOM_SPEC = {"cpu": 1.0, "memory": 2048}
ENTRY_KEYS = ("weight", "specification", "custom_spec", "instance_count", "envs")


def server_url(settings: Settings) -> str:
    """Where this server is reached: ``OPENARTS_PUBLIC_URL``, or what ``openarts serve`` was told to bind
    (jobs run on this machine, so a wildcard bind is reached on the loopback)."""
    return settings.public_url or "http://127.0.0.1:8000"


def _service_config(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for output in outputs:
        config = output.get("service_config")
        if isinstance(config, dict):
            merged.update(config)
    return merged


def _schedule(value: Any) -> list[dict[str, Any]] | None:
    """A v1 schedule list as is; the workflow ``schedule`` format (hours, -1 for always on) as a stop."""
    if value is None or isinstance(value, list):
        return value
    try:
        hours = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"schedule {value!r}: give hours (-1: always on) or a list of schedules") from None
    return None if hours <= 0 else [{"type": "stop", "time_unit": "HOURS", "duration": hours}]


class _Refused(Exception):  # noqa: N818 - a refusal of the step, with its ModelArts code
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _scope(ctx: StepContext) -> refs.Scope:
    """What placeholders in data requirement conditions resolve to: this run's values and done steps."""
    scope = refs.Scope()
    for parameter in ctx.execution.parameters:
        value = parameter.get("value", parameter.get("default"))
        if value is not None:
            scope.parameters[parameter["name"]] = value
    for item in ctx.execution.snapshot.get("data") or []:
        scope.data[item["name"]] = item.get("value") or {}
    for item in ctx.execution.data_requirements:
        if item.get("value") is not None:
            scope.data_requirements[item["name"]] = item["value"]
    done = ctx.session.scalars(
        select(StepExecution).where(StepExecution.execution_id == ctx.execution.id, StepExecution.status == "completed")
    )
    for row in done:
        scope.consumptions[row.step_name] = {o["name"]: o.get("config") or {} for o in row.outputs}
    return scope


def _requirement(ctx: StepContext, data: Any) -> dict[str, Any] | None:
    """The data requirement an input's ``data`` names, if it names one."""
    if not isinstance(data, str):
        return None
    try:
        ref = refs.parse(data)
    except refs.RefError:
        return None
    if ref is None or ref.kind != "data_requirements":
        return None
    return next((d for d in ctx.execution.data_requirements if d["name"] == ref.name), None)


def _find_model(ctx: StepContext, owner: Principal, item: dict[str, Any]) -> Model:
    if item.get("model_id"):
        try:
            return models.get_model(ctx.session, owner, str(item["model_id"]))
        except ApiError:
            raise _Refused("ModelArts.3507", f"model {item['model_id']} does not exist") from None
    name = item.get("model_name")
    if not name:
        raise _Refused("ModelArts.3036", f"a model input needs model_id or model_name, got {item!r}")
    query = select(Model).where(Model.project_id == owner.project_id, Model.name == name)
    if item.get("model_version"):
        query = query.where(Model.version == item["model_version"])
    else:
        query = query.where(Model.status == models.PUBLISHED)
    candidates = list(ctx.session.scalars(query))
    if not candidates:
        version = item.get("model_version") or "published"
        raise _Refused("ModelArts.3507", f"no {version} model named {name}")
    # The newest version (numerically) when the input names only the model.
    newest = max(candidates, key=lambda m: tuple(int(p) if p.isdigit() else 0 for p in m.version.split(".")))
    return models.get_model(ctx.session, owner, newest.id)


class ServiceStep:
    name = "service"
    starting_status = "creating"
    cacheable = False  # a cached run would hand out a service that may have been stopped since
    polls = True

    def validate(self, step: dict[str, Any]) -> None:
        properties = step.get("properties")
        if properties is not None and not isinstance(properties, dict):
            raise StepProblem("a service step's properties must be an object: the service's deploy settings")
        if not step.get("inputs") and not (properties or {}).get("service_id"):
            raise StepProblem("a service step needs inputs: the models to deploy (or a service to update)")
        infer_type = (properties or {}).get("infer_type")
        if infer_type is not None and infer_type not in ("real-time", "batch", "edge"):
            raise StepProblem(f"infer_type {infer_type!r} is not one of real-time, batch, edge")

    # --- start ---------------------------------------------------------------------------------

    def start(self, ctx: StepContext) -> str:
        if ctx.owner is None:
            return ctx.fail("ModelArts.0104", "the user who started the execution no longer exists")
        settings = dict(_service_config(ctx.resolved.get("outputs") or []))
        settings.update(copy.deepcopy(ctx.resolved.get("properties") or {}))
        try:
            entries, target = self._entries(ctx, ctx.owner, settings)
            if target is None:
                service_id = self._deploy(ctx, ctx.owner, settings, entries)
                ctx.step.state = {**ctx.step.state, "service_id": service_id, "deployed": True}
            else:
                self._update(ctx, ctx.owner, target, settings, entries)
                ctx.step.state = {**ctx.step.state, "service_id": target, "deployed": False}
        except _Refused as exc:
            ctx.step.error_info = {"error_code": exc.code, "error_message": exc.message[:2000]}
            return "create_failed"
        service_id = ctx.step.state["service_id"]
        ctx.step.instance_id = json.dumps({"service_id": service_id})
        self._fill_outputs(ctx, {"service_id": service_id, "service_name": ctx.step.state["service_name"]})
        wake_after_commit(ctx.session, services.wake_controller)
        return "created"

    def _entries(
        self, ctx: StepContext, owner: Principal, settings: dict[str, Any]
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The config entries (one per model) and the service to update, if any."""
        target: str | None = settings.get("service_id") or None
        chosen: list[dict[str, Any]] = []
        scope: refs.Scope | None = None
        for item in ctx.resolved.get("inputs") or []:
            value = item.get("value")
            requirement = _requirement(ctx, item.get("data"))
            conditions = (requirement or {}).get("conditions") or []
            if isinstance(value, dict) and value.get("service_id") and not value.get("model_id"):
                target = str(value["service_id"])
                continue
            if isinstance(value, str):
                value = {"model_id": value}
            if not isinstance(value, dict):
                raise _Refused("ModelArts.3036", f"input {item.get('name')} has no model (value {value!r})")
            listed = value.get("model_list") or value.get("models")
            picks = [dict(v) for v in listed if isinstance(v, dict)] if isinstance(listed, list) else [dict(value)]
            envs: dict[str, str] = {}
            wanted_name: str | None = None
            for condition in conditions:
                attribute, wanted = condition.get("attribute"), condition.get("value")
                if attribute == "model_name":
                    wanted_name = str(wanted)
                elif attribute == "envs" and isinstance(wanted, dict):
                    scope = scope or _scope(ctx)
                    try:
                        resolved = refs.resolve(wanted, scope)
                    except refs.Missing as exc:
                        raise _Refused("ModelArts.0104", f"{exc.ref.text} has no value") from None
                    envs.update({str(k): v if isinstance(v, str) else json.dumps(v) for k, v in resolved.items()})
            for pick in picks:
                model = _find_model(ctx, owner, pick)
                if wanted_name is not None and model.name != wanted_name:
                    raise _Refused(
                        "ModelArts.3037",
                        f"input {item.get('name')}: model {model.id} is named {model.name}, "
                        f"the data requirement wants {wanted_name}",
                    )
                entry: dict[str, Any] = {"model_id": model.id}
                for key in ENTRY_KEYS:
                    if pick.get(key) is not None:
                        entry[key] = pick[key]
                    elif settings.get(key) is not None:
                        entry[key] = copy.deepcopy(settings[key])
                if envs:
                    entry["envs"] = {**(entry.get("envs") or {}), **envs}
                chosen.append(entry)
        if not chosen:
            raise _Refused("ModelArts.3036", "no input of the step names a model to deploy")
        if len(chosen) > 1 and any("weight" not in entry for entry in chosen):
            # An even split unless the inputs say otherwise; the remainder goes to the first model.
            share = 100 // len(chosen)
            for index, entry in enumerate(chosen):
                entry.setdefault("weight", share + (100 - share * len(chosen) if index == 0 else 0))
        for entry in chosen:
            entry.setdefault("specification", DEFAULT_SPECIFICATION)
            if entry["specification"] == DEFAULT_SPECIFICATION:
                entry.setdefault("custom_spec", dict(DEFAULT_CUSTOM_SPEC))
        return chosen, target

    def _deploy(
        self, ctx: StepContext, owner: Principal, settings: dict[str, Any], entries: list[dict[str, Any]]
    ) -> str:
        name = settings.get("service_name") or f"{ctx.step.step_name[:50]}-{uuid.uuid4().hex[:8]}"
        raw = {
            "service_name": name,
            "description": settings.get("description") or f"workflow {ctx.execution.name} step {ctx.step.step_name}",
            "infer_type": settings.get("infer_type") or "real-time",
            "workspace_id": settings.get("workspace_id") or ctx.execution.workspace_id,
            "config": entries,
            **{k: settings[k] for k in ("vpc_id", "subnet_network_id", "security_group_id") if settings.get(k)},
        }
        raw["description"] = "".join(c for c in str(raw["description"]) if c not in "!<>+&\"'")[:100]
        try:
            raw["schedule"] = _schedule(settings.get("schedule"))
            body = DeployService.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            raise _Refused("ModelArts.3037", str(exc).splitlines()[0]) from None
        try:
            with ctx.session.begin_nested():
                created = services.deploy_service(ctx.session, ctx.services.settings, owner, body, ctx.now_ms)
        except ApiError as exc:
            raise _Refused(exc.code, exc.message) from None
        ctx.step.state = {**ctx.step.state, "service_name": body.service_name}
        return str(created["service_id"])

    def _update(
        self,
        ctx: StepContext,
        owner: Principal,
        service_id: str,
        settings: dict[str, Any],
        entries: list[dict[str, Any]],
    ) -> None:
        """New models for an existing service, then start it if it is not running (reference 4.6)."""
        try:
            raw: dict[str, Any] = {"config": entries}
            if "schedule" in settings:
                raw["schedule"] = _schedule(settings["schedule"]) or []
            body = UpdateService.model_validate(raw)
        except (ValueError, ValidationError) as exc:
            raise _Refused("ModelArts.3037", str(exc).splitlines()[0]) from None
        try:
            with ctx.session.begin_nested():
                settings_ = ctx.services.settings
                services.update_service(ctx.session, settings_, owner, service_id, body, ctx.now_ms)
                service = services.get_service(ctx.session, owner, service_id)
                if service.status in (services.STOPPED, services.FAILED):
                    start = UpdateService(status=services.RUNNING)
                    services.update_service(ctx.session, settings_, owner, service_id, start, ctx.now_ms)
        except ApiError as exc:
            raise _Refused(exc.code, exc.message) from None
        ctx.step.state = {**ctx.step.state, "service_name": service.name}

    def _fill_outputs(self, ctx: StepContext, values: dict[str, Any]) -> None:
        outputs = [dict(output) for output in ctx.step.outputs]
        for output in outputs:
            output["config"] = {**(output.get("config") or {}), **values}
        ctx.step.outputs = outputs

    # --- follow and stop ----------------------------------------------------------------------

    def poll(self, ctx: StepContext) -> str:
        service_id = ctx.step.state.get("service_id")
        if ctx.owner is None or not service_id:
            return ctx.fail("ModelArts.0104", "the step's service or its user no longer exists")
        try:
            status, error = services.service_status(ctx.session, ctx.owner, str(service_id))
        except ApiError:
            if ctx.step.status == "stopping":
                return "stopped"
            return ctx.fail("ModelArts.3502", f"the step's service {service_id} was deleted")
        if ctx.step.status == "stopping":
            return "stopping" if status in (services.STOPPING, services.DEPLOYING) else "stopped"
        if status in services.SERVING:
            base = server_url(ctx.services.settings)
            self._fill_outputs(
                ctx,
                {
                    "service_id": service_id,
                    "service_name": ctx.step.state.get("service_name", ""),
                    "infer_type": "real-time",
                    "access_address": services.access_address(base, str(service_id)),
                },
            )
            return "completed"
        if status == services.FAILED:
            return ctx.fail("ModelArts.3501", error or f"service {service_id} failed to deploy")
        if status in (services.STOPPED, services.STOPPING):
            return ctx.fail("ModelArts.3501", f"service {service_id} was stopped before it ran")
        return "running"  # deploying

    def stop(self, ctx: StepContext) -> str:
        service_id = ctx.step.state.get("service_id")
        if ctx.owner is None or not service_id or not ctx.step.state.get("deployed"):
            return "stopped"  # an updated service belongs to someone else's lifecycle: left as it is
        try:
            service = services.get_service(ctx.session, ctx.owner, str(service_id))
        except ApiError:
            return "stopped"
        if service.status != services.DEPLOYING:
            return "stopped"
        services.request_stop(service, ctx.now_ms, "Stopped by its workflow.")
        wake_after_commit(ctx.session, services.wake_controller)
        return "stopping"


steps.register(ServiceStep())
