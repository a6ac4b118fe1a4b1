"""Model rules: create, find, list, show, delete. Publishing (copying and checking the package) is the
controller's (``controller.py``): create leaves the model ``publishing`` and returns, as ModelArts does.

These functions take a session and a principal, never a request, so other families (the workflow
``model`` step) call them directly: ``create_model(...)["model_id"]``, then ``model_status(...)``.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import ColumnElement, asc, desc, func, select
from sqlalchemy.orm import Session

from openarts.config import Settings
from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.models import errors, package
from openarts.models.schemas import CreateModel, ListModelsQuery
from openarts.models.tables import Model
from openarts.storage.paths import ObsPath, parse_obs_url
from openarts.workspaces import quotas
from openarts.workspaces import service as workspace_service
from openarts.workspaces.access import can_access, require_workspace
from openarts.workspaces.tables import Workspace

PUBLISHING, PUBLISHED, FAILED = "publishing", "published", "failed"
STATUSES = (PUBLISHING, PUBLISHED, FAILED, "building", "building_failed")
_NAME = re.compile(r"[\w-]{1,64}")  # letters (Chinese too), digits, - and _
_VERSION = re.compile(r"(0|[1-9]\d?)\.(0|[1-9]\d?)\.(0|[1-9]\d?)")
_DESCRIPTION_FORBIDDEN = set("&!'\"<>=")
_ALGORITHM = re.compile(r"[A-Za-z][\w-]{0,35}")
INSTALL_TYPES = ("real-time", "batch", "edge")
CASCADE_LIMIT = 20
SORT_COLUMNS = {"create_at": Model.create_at, "model_version": Model.version, "model_size": Model.model_size}

# Set when a model is created (the controller publishes it).
wake_controller = threading.Event()
# Checks that say whether something (a service) still uses a model: (session, model_id) -> in use.
IN_USE_CHECKS: list[Callable[[Session, str], bool]] = []


def models_dir(settings: Settings) -> Path:
    """Where published packages are copied: a service runs the copy, so later changes in the store (or
    its deletion) never change a published model."""
    return settings.data_dir / "models"


def package_dir(settings: Settings, model_id: str) -> Path:
    return models_dir(settings) / model_id / "model"


# --- create --------------------------------------------------------------------------------------------


def _source_path(value: str) -> ObsPath:
    """``/bucket/dir``, ``obs://bucket/dir`` or ModelArts' ``https://bucket.obs.<region>.../dir`` form."""
    if value.startswith(("https://", "http://")):
        parts = urlsplit(value)
        bucket = (parts.hostname or "").split(".", 1)[0]
        if not bucket or ".obs." not in (parts.hostname or "") + ".":
            raise errors.bad_source(f"{value} is not an object-storage address.")
        value = f"/{bucket}{parts.path}"
    path = parse_obs_url(value if value.endswith("/") else value + "/")
    if not path.key:
        raise errors.bad_source("it must name a folder inside the bucket, the one that holds model/.")
    return path


def _job_output(session: Session, principal: Principal, job_id: str) -> str:
    """The first output folder of a completed training job: where its model was written."""
    from openarts.training.jobs import service as jobs  # a family is called through its service functions

    job = jobs.get_job(session, principal, job_id)
    if job.phase != "Completed":
        raise errors.invalid("source_job_id", job_id, f"the training job is {job.phase}, not Completed.")
    outputs = job.launch.get("outputs") or []
    if not outputs:
        raise errors.invalid("source_job_id", job_id, "the training job has no output folder.")
    return str(outputs[0]["obs_url"])


def _validate(body: CreateModel) -> str | None:
    """Field rules of reference 2.2; the model type (canonical) if the body gives one."""
    if not _NAME.fullmatch(body.model_name):
        raise errors.invalid("model_name", body.model_name, "1-64 letters, digits, - or _.")
    if not _VERSION.fullmatch(body.model_version):
        raise errors.invalid("model_version", body.model_version, "use N.N.N with parts 0-99, no leading zero.")
    if body.description is not None and (len(body.description) > 100 or _DESCRIPTION_FORBIDDEN & set(body.description)):
        raise errors.invalid("description", body.description, "at most 100 characters, none of &!'\"<>=.")
    if body.model_algorithm is not None and not _ALGORITHM.fullmatch(body.model_algorithm):
        raise errors.invalid("model_algorithm", body.model_algorithm, "a letter first, at most 36 characters.")
    if body.model_metrics is not None:
        try:
            json.loads(body.model_metrics)
        except ValueError:
            raise errors.invalid("model_metrics", body.model_metrics, "it must be a JSON-encoded string.") from None
    for install_type in body.install_type or []:
        if install_type not in INSTALL_TYPES:
            raise errors.invalid("install_type", install_type, f"use {', '.join(INSTALL_TYPES)}.")
    if len(body.model_docs or []) > 3:
        raise errors.invalid("model_docs", len(body.model_docs or []), "at most 3 documents.")
    package.check_dependencies(body.dependencies)
    package.check_apis(body.apis)
    if body.initial_config is not None:
        package.parse_config(body.initial_config.encode(), "initial_config")
    if body.model_type is None:
        return None
    model_type = package.canonical_type(body.model_type)
    if model_type is None:
        raise errors.invalid("model_type", body.model_type, f"use one of {', '.join(package.KNOWN_TYPES)}.")
    package.require_served(model_type)
    return model_type


def create_model(
    session: Session, settings: Settings, principal: Principal, body: CreateModel, now_ms: int
) -> dict[str, Any]:
    """Record the model as ``publishing``; the controller checks and copies its package. ``{"model_id"}``."""
    model_type = _validate(body)
    workspace_id = body.workspace_id or ids.DEFAULT_WORKSPACE_ID
    quotas.check_quota(session, principal, workspace_id, "model.num")
    source = body.source_location
    if not source:
        if not body.source_job_id:
            raise errors.required("source_location")
        source = _job_output(session, principal, body.source_job_id)
    location = _source_path(source)
    taken = session.scalar(
        select(Model.id).where(
            Model.project_id == principal.project_id,
            Model.name == body.model_name,
            Model.version == body.model_version,
        )
    )
    if taken is not None:
        raise errors.already_exists(body.model_name, body.model_version)
    model = Model(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=workspace_id,
        user_id=principal.user_id,
        user_name=principal.user_name,
        name=body.model_name,
        version=body.model_version,
        model_type=model_type or "",
        runtime=body.runtime or "",
        status=PUBLISHING,
        description=body.description or "",
        source_location=location.url(),
        create_at=now_ms,
        request=body.model_dump(exclude_none=True),
        config={},
        events=[_event(now_ms, "The model starts to import")],
    )
    session.add(model)
    session.flush()
    return {"model_id": model.id}


def _event(now_ms: int, info: str, kind: str = "normal") -> dict[str, Any]:
    return {"occur_time": now_ms, "event_type": kind, "event_info": info}


# --- find, show, list ------------------------------------------------------------------------------------


def get_model(session: Session, principal: Principal, model_id: str) -> Model:
    """The model, if the caller may see it; models of workspaces it may not use look absent (3001)."""
    model = session.get(Model, model_id)
    if model is None or model.project_id != principal.project_id:
        raise errors.not_found(model_id)
    workspace = session.get(Workspace, (model.project_id, model.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise errors.not_found(model_id)
    return model


def model_status(session: Session, principal: Principal, model_id: str) -> tuple[str, str]:
    """(status, failure reason) of a model: what a workflow step polls."""
    model = get_model(session, principal, model_id)
    return model.status, model.failure_reason


def _list_item(model: Model) -> dict[str, Any]:
    request = model.request
    return {
        "model_id": model.id,
        "model_name": model.name,
        "model_version": model.version,
        "model_status": model.status,
        "model_type": model.model_type,
        "model_size": model.model_size,
        "tenant": model.project_id,
        "project": model.project_id,
        "owner": model.user_id,
        "create_at": model.create_at,
        "description": model.description,
        "source_type": request.get("source_type", ""),
        "workspace_id": model.workspace_id,
        "model_source": "auto" if request.get("source_type") == "auto" else "custom",
        "tunable": False,
        "market_flag": False,
        "publishable_flag": model.status == PUBLISHED,
        "install_type": request.get("install_type") or ["real-time", "batch"],
        "subscription_id": "",
        "extra": "",
        "specification": {},
        "source_copy": request.get("source_copy", "true"),
    }


def _apis_as_params(config: dict[str, Any]) -> list[dict[str, Any]]:
    """config.json's request/response ``apis`` in the create body's input/output_params shape."""
    apis = []
    for api in config.get("apis") or []:
        if not isinstance(api, dict):
            continue
        request, response = api.get("request") or {}, api.get("response") or {}
        apis.append(
            {
                "protocol": api.get("protocol") or api.get("procotol") or "http",
                "method": api.get("method") or "post",
                "url": api.get("url") or "/",
                "input_params": request.get("data") or {},
                "output_params": response.get("data") or {},
            }
        )
    return apis


def show_model(session: Session, principal: Principal, model_id: str) -> dict[str, Any]:
    model = get_model(session, principal, model_id)
    request, config = model.request, model.config
    apis = request.get("apis") if request.get("apis") is not None else _apis_as_params(config)
    metrics = request.get("model_metrics") or (json.dumps(config["metrics"]) if "metrics" in config else "")
    wire = _list_item(model)
    wire.update(
        {
            "source_location": request.get("source_location") or model.source_location,  # as sent
            "source_job_id": request.get("source_job_id", ""),
            "source_job_version": request.get("source_job_version", ""),
            "runtime": model.runtime,
            "execution_code": request.get("execution_code", ""),
            "schema_doc": "",
            "image_address": "",
            "input_params": request.get("input_params") or [],
            "output_params": request.get("output_params") or [],
            "dependencies": request.get("dependencies", config.get("dependencies") or []),
            "model_metrics": metrics,
            "apis": json.dumps(apis),
            "model_docs": request.get("model_docs") or [],
            "health": config.get("health") or {},
            "model_algorithm": request.get("model_algorithm") or config.get("model_algorithm") or "",
            "model_labels": [],
            "labels_map": {"labels": []},
            "config": json.dumps(config) if config else "",
            "cmd": request.get("cmd", ""),
        }
    )
    if model.status == FAILED:
        wire["failed_reason"] = model.failure_reason  # OpenArts' own: why the import failed
    return wire


def list_models(session: Session, principal: Principal, query: ListModelsQuery) -> dict[str, Any]:
    require_workspace(session, principal, query.workspace_id, action="list models")
    if query.model_type and query.not_model_type:
        raise errors.invalid("model_type", query.model_type, "model_type and not_model_type exclude each other.")
    if query.sort_by not in SORT_COLUMNS:
        raise errors.invalid("sort_by", query.sort_by, f"use {', '.join(SORT_COLUMNS)}.")
    if query.order not in ("asc", "desc"):
        raise errors.invalid("order", query.order, "use asc or desc.")
    conditions: list[ColumnElement[bool]] = [
        Model.project_id == principal.project_id,
        Model.workspace_id == query.workspace_id,
    ]
    if query.model_name:
        exact = query.exact_match  # "_" is matched literally either way (contains() escapes it)
        conditions.append(Model.name == query.model_name if exact else contains(Model.name, query.model_name))
    if query.model_version:
        conditions.append(Model.version == query.model_version)
    if query.model_status:
        conditions.append(Model.status == query.model_status.lower())
    if query.model_type:
        conditions.append(func.lower(Model.model_type) == query.model_type.lower())
    if query.not_model_type:
        conditions.append(func.lower(Model.model_type) != query.not_model_type.lower())
    if query.description:
        conditions.append(contains(Model.description, query.description))
    total = session.scalar(select(func.count()).select_from(Model).where(*conditions)) or 0
    direction = asc if query.order == "asc" else desc
    rows = session.scalars(
        select(Model)
        .where(*conditions)
        .order_by(direction(SORT_COLUMNS[query.sort_by]), direction(Model.id))
        .offset(query.offset)
        .limit(query.limit)
    ).all()
    items = [_list_item(model) for model in rows]
    return {"total_count": total, "count": len(items), "models": items}


# --- delete ------------------------------------------------------------------------------------------------


def delete_model(
    session: Session, settings: Settings, principal: Principal, model_id: str, cascade: bool
) -> dict[str, Any]:
    """Reference 2.6: 200 with success and failure lists; a model a service uses is not deleted (3009)."""
    model = get_model(session, principal, model_id)
    targets = [model]
    if cascade:
        others = session.scalars(
            select(Model)
            .where(Model.project_id == model.project_id, Model.name == model.name, Model.id != model.id)
            .order_by(Model.create_at)
            .limit(CASCADE_LIMIT - 1)
        ).all()
        targets += [other for other in others if _visible(session, principal, other)]
    succeeded: list[str] = []
    failed: list[dict[str, Any]] = []
    for target in targets:
        if any(check(session, target.id) for check in IN_USE_CHECKS):
            error = errors.in_use(target.id)
            failed.append(
                {
                    "model_id": target.id,
                    "error_code": error.code,
                    "error_message": error.message,
                    "error_msg": error.message,
                }
            )
            continue
        session.delete(target)
        succeeded.append(target.id)
    session.flush()
    for deleted in succeeded:  # the copy goes with the row (a publish in progress notices the row is gone)
        shutil.rmtree(models_dir(settings) / deleted, ignore_errors=True)
    return {"delete_success_list": succeeded, "delete_failed_list": failed}


def _visible(session: Session, principal: Principal, model: Model) -> bool:
    workspace = session.get(Workspace, (model.project_id, model.workspace_id))
    return workspace is not None and can_access(session, principal, workspace)


# --- quotas and workspaces ---------------------------------------------------------------------------------


def _models_used(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Model.project_id == project_id, Model.workspace_id == workspace_id)
    return session.scalar(query) or 0


quotas.register_resource(
    quotas.QuotaSpec("model.num", "Models", "模型数", "model", "个", max_quota=100000), _models_used
)
workspace_service.resource_holders["models"] = _models_used
