"""Algorithm rules: create, list, show, change, delete, and what training jobs read from an algorithm.

An algorithm lives in a workspace; every operation first asks ``require_workspace`` whether the caller
may work there. Object-storage paths go through the one path grammar (``openarts.storage.paths``)
and engines through the compute catalogue (``openarts.compute.engines``), so an algorithm that was
accepted names nothing a job could not resolve.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, and_, asc, desc, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openarts.compute.engines import find_engine
from openarts.config import Settings
from openarts.core import ids
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.storage.paths import parse_obs_url
from openarts.training.algorithms import schemas
from openarts.training.algorithms.tables import Algorithm
from openarts.training.errors import invalid_param as invalid_param  # re-exported: callers use it from here
from openarts.training.errors import training_error
from openarts.workspaces.access import accessible_clause, accessible_params, can_access, require_workspace
from openarts.workspaces.service import resource_holders
from openarts.workspaces.tables import Workspace

AI_PROJECT = "default-ai-project"
SORT_COLUMNS = {"create_time": Algorithm.create_time, "update_time": Algorithm.update_time, "name": Algorithm.name}
# What a parameter's constraint says when the caller leaves a field out (reference B.3).
CONSTRAINT_DEFAULTS: dict[str, Any] = {
    "type": "String",
    "editable": True,
    "required": True,
    "sensitive": False,
    "valid_type": "None",
    "valid_range": [],
}


# --- errors (training v2 errors carry an error_solution) -------------------------------------


def algorithm_not_found(algorithm_id: str) -> ApiError:
    return training_error(
        "2755",
        "AiAlgorithmNotFound",
        f"algorithm {algorithm_id} does not exist.",
        "Check the algorithm id: list the algorithms with GET /v2/{project_id}/algorithms.",
    )


def duplicate_name(name: str, workspace_id: str) -> ApiError:
    return training_error(
        "2751",
        "DuplicateAlgorithmName",
        f"an algorithm named {name} already exists in workspace {workspace_id}.",
        "Use another name.",
    )


def _code_dir_error(message: str) -> ApiError:
    return training_error("2757", "CodeDirError", message, "Check job_config.code_dir.")


def _boot_file_error(message: str) -> ApiError:
    return training_error("2758", "BootFileDirError", message, "Check job_config.boot_file: it must lie in code_dir.")


def _channel_error(message: str) -> ApiError:
    return training_error(
        "2753", "InputsOutputsMessageError", message, "Check job_config.inputs and job_config.outputs."
    )


def _engine_not_found(message: str) -> ApiError:
    return training_error(
        "2780", "EngineNotFound", message, "List the engines with GET /v2/{project_id}/training-job-engines."
    )


def _must_have_command(message: str) -> ApiError:
    return training_error("2806", "MustHaveCmdAndImage", message, "Give job_config.command with engine.image_url.")


# --- what other families read ------------------------------------------------------------------


def get_algorithm(session: Session, principal: Principal, algorithm_id: str) -> Algorithm:
    """The algorithm a training job names; 2755 if it doesn't exist or the caller may not use it.

    Jobs get no 403 here: an algorithm in a workspace the caller cannot enter is, to them, unknown.
    """
    algorithm = session.scalar(
        select(Algorithm).where(Algorithm.project_id == principal.project_id, Algorithm.id == algorithm_id)
    )
    if algorithm is None:
        raise algorithm_not_found(algorithm_id)
    workspace = session.get(Workspace, (algorithm.project_id, algorithm.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise algorithm_not_found(algorithm_id)
    return algorithm


def _parameter_wire(parameter: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": parameter["name"],
        "value": parameter.get("value", ""),
        "description": parameter.get("description", ""),
        "constraint": {**CONSTRAINT_DEFAULTS, **(parameter.get("constraint") or {})},
        "i18n_description": parameter.get("i18n_description"),
    }


def algorithm_to_wire(algorithm: Algorithm) -> dict[str, Any]:
    """The algorithm as a training job echoes it in its ``algorithm`` object (JobAlgorithmResponse).

    Keys the algorithm leaves unset (code_dir, boot_file, command) are left out, so a job can lay its
    own values over this dict. ``policies`` is ``{}`` without auto search; ``environments`` a dict.
    """
    wire: dict[str, Any] = {"id": algorithm.id, "name": algorithm.name}
    for key in ("code_dir", "boot_file", "command"):
        value = getattr(algorithm, key)
        if value is not None:
            wire[key] = value
    wire["engine"] = dict(algorithm.engine)
    wire["parameters"] = [_parameter_wire(p) for p in algorithm.parameters]
    wire["inputs"] = [_channel_for_job(channel) for channel in algorithm.inputs]
    wire["outputs"] = [_channel_for_job(channel) for channel in algorithm.outputs]
    wire["environments"] = dict(algorithm.environments)
    wire["policies"] = {"auto_search": algorithm.auto_search} if algorithm.auto_search else {}
    return wire


def _channel_for_job(channel: dict[str, Any]) -> dict[str, Any]:
    # A job's data channel has no remote_constraints (its remote_constraint is typed differently).
    return {key: value for key, value in channel.items() if key != "remote_constraints"}


def _count_in_workspace(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Algorithm.project_id == project_id, Algorithm.workspace_id == workspace_id)
    return session.scalar(query) or 0


resource_holders["algorithms"] = _count_in_workspace


# --- the wire shape ----------------------------------------------------------------------------


def to_wire(algorithm: Algorithm) -> dict[str, Any]:
    """AlgorithmResponse: what create, show, change and each list item answer."""
    requirements = None
    if algorithm.resource_requirements:
        # The SDK's response model reads ``value``; ModelArts' own clients read ``values``: send both.
        requirements = [
            {"key": r["key"], "value": r["values"], "values": r["values"], "operator": r["operator"]}
            for r in algorithm.resource_requirements
        ]
    return {
        "metadata": {
            "id": algorithm.id,
            "name": algorithm.name,
            "description": algorithm.description,
            "workspace_id": algorithm.workspace_id,
            "ai_project": AI_PROJECT,
            "user_name": algorithm.user_name,
            "domain_id": algorithm.domain_id,
            "source": "custom",
            "api_version": "",
            "is_valid": True,
            "state": "",
            "tags": algorithm.tags,
            "attr_list": None,
            "version_num": 0,
            "size": 0,
            "create_time": algorithm.create_time,
            "update_time": algorithm.update_time,
        },
        "job_config": {
            "code_dir": algorithm.code_dir or "",
            "boot_file": algorithm.boot_file or "",
            "command": algorithm.command or "",
            "parameters": [_parameter_wire(p) for p in algorithm.parameters],
            "parameters_customization": algorithm.parameters_customization,
            "inputs": algorithm.inputs,
            "outputs": algorithm.outputs,
            "engine": algorithm.engine,
            "environments": algorithm.environments,
            "code_tree": None,
        },
        "resource_requirements": requirements,
        "advanced_config": {"auto_search": algorithm.auto_search} if algorithm.auto_search else {},
    }


# --- validating a job_config -------------------------------------------------------------------


def _check_code(config: schemas.JobConfig) -> None:
    if config.code_dir is None and config.boot_file is None:
        if config.command is None:
            raise invalid_param("an algorithm needs job_config.code_dir and job_config.boot_file, or a command.")
        return
    if config.code_dir is None:
        raise _code_dir_error("job_config.code_dir is required with job_config.boot_file.")
    if config.boot_file is None:
        raise _boot_file_error("job_config.boot_file is required with job_config.code_dir.")
    folder = parse_obs_url(config.code_dir).as_dir()
    boot_file = parse_obs_url(config.boot_file)
    inside = boot_file.bucket == folder.bucket and boot_file.key.startswith(folder.key)
    if boot_file.is_dir or not inside:
        raise _boot_file_error(f"boot_file {config.boot_file} is not a file in code_dir {config.code_dir}.")


def _resolve_engine(settings: Settings, engine: schemas.Engine, command: str | None) -> dict[str, Any]:
    """The engine as stored and echoed: the catalogue's own id, name and version, plus any image."""
    if engine.image_url is not None and command is None:
        raise _must_have_command("an algorithm with engine.image_url needs job_config.command.")
    if engine.engine_id is None and engine.engine_name is None:
        if engine.engine_version is not None:
            raise _engine_not_found("engine.engine_version needs engine.engine_name.")
        if engine.image_url is None:
            raise _engine_not_found("engine needs engine_id, engine_name and engine_version, or image_url.")
        return {"image_url": engine.image_url}
    found = find_engine(
        settings, engine_id=engine.engine_id, engine_name=engine.engine_name, engine_version=engine.engine_version
    )
    if found is None:
        wanted = engine.engine_id or f"{engine.engine_name} {engine.engine_version or ''}".strip()
        raise _engine_not_found(f"engine {wanted} does not exist.")
    resolved: dict[str, Any] = {
        "engine_id": found.engine_id,
        "engine_name": found.engine_name,
        "engine_version": found.engine_version,
    }
    if engine.image_url is not None:
        resolved["image_url"] = engine.image_url
    return resolved


def _channels(config: schemas.JobConfig) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Inputs and outputs as stored; their names are distinct, since each becomes one argument."""
    seen: set[str] = set()
    for channel in (*config.inputs, *config.outputs):
        if channel.name in seen:
            raise _channel_error(f"the data channel name {channel.name} is used twice.")
        seen.add(channel.name)
        if channel.remote is not None:
            parse_obs_url(channel.remote.obs.obs_url)
    inputs = [channel.model_dump(exclude_none=True) for channel in config.inputs]
    outputs = [channel.model_dump(exclude_none=True) for channel in config.outputs]
    return inputs, outputs


def _parameters(config: schemas.JobConfig) -> list[dict[str, Any]]:
    names = [parameter.name for parameter in config.parameters]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise invalid_param(f"the parameter name {duplicates[0]} is used twice.")
    taken = {channel.name for channel in (*config.inputs, *config.outputs)} & set(names)
    if taken:
        raise invalid_param(f"{sorted(taken)[0]} names both a parameter and a data channel.")
    return [parameter.model_dump(exclude_none=True) for parameter in config.parameters]


def _apply_job_config(algorithm: Algorithm, settings: Settings, config: schemas.JobConfig) -> None:
    """Validate a whole job_config and write it onto the row; nothing is written if any part fails."""
    _check_code(config)
    engine = _resolve_engine(settings, config.engine, config.command)
    inputs, outputs = _channels(config)
    parameters = _parameters(config)
    algorithm.code_dir = config.code_dir
    algorithm.boot_file = config.boot_file
    algorithm.command = config.command
    algorithm.engine = engine
    algorithm.parameters = parameters
    algorithm.parameters_customization = config.parameters_customization
    algorithm.inputs = inputs
    algorithm.outputs = outputs
    algorithm.environments = dict(config.environments or {})


def _auto_search(config: schemas.AdvancedConfig | None) -> dict[str, Any] | None:
    if config is None or config.auto_search is None or config.auto_search.is_empty():
        return None
    return config.auto_search.model_dump(exclude_none=True)


def _requirements(requirements: list[schemas.ResourceRequirement] | None) -> list[dict[str, Any]] | None:
    return [r.model_dump() for r in requirements] if requirements else None


def _tags(tags: list[schemas.Tag] | None) -> list[dict[str, Any]] | None:
    return [tag.model_dump(exclude_none=True) for tag in tags] if tags else None


# --- create, show, change, delete --------------------------------------------------------------


def _flush_or_duplicate(session: Session, algorithm: Algorithm) -> None:
    try:
        session.flush()
    except IntegrityError:  # a concurrent create took the name between the check and the insert
        raise duplicate_name(algorithm.name, algorithm.workspace_id) from None


def _check_name_free(session: Session, project_id: str, workspace_id: str, name: str) -> None:
    clash = session.scalar(
        select(Algorithm.id).where(
            Algorithm.project_id == project_id, Algorithm.workspace_id == workspace_id, Algorithm.name == name
        )
    )
    if clash is not None:
        raise duplicate_name(name, workspace_id)


def create(
    session: Session, principal: Principal, body: schemas.CreateAlgorithm, settings: Settings, now_ms: int
) -> dict[str, Any]:
    metadata = body.metadata
    require_workspace(session, principal, metadata.workspace_id, action="modelarts:aiAlgorithm:create")
    algorithm = Algorithm(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=metadata.workspace_id,
        name=metadata.name,
        description=metadata.description,
        tags=_tags(metadata.tags),
        user_id=principal.user_id,
        user_name=principal.user_name,
        domain_id=principal.domain_id,
        create_time=now_ms,
        update_time=now_ms,
        auto_search=_auto_search(body.advanced_config),
        resource_requirements=_requirements(body.resource_requirements),
    )
    _apply_job_config(algorithm, settings, body.job_config)
    _check_name_free(session, principal.project_id, metadata.workspace_id, metadata.name)
    session.add(algorithm)
    _flush_or_duplicate(session, algorithm)
    return to_wire(algorithm)


def _require(session: Session, principal: Principal, algorithm_id: str, action: str) -> Algorithm:
    """The algorithm for an algorithm route: 2755 if unknown (also in other projects), 403 if the
    caller may not work in its workspace."""
    algorithm = session.scalar(
        select(Algorithm).where(Algorithm.project_id == principal.project_id, Algorithm.id == algorithm_id)
    )
    if algorithm is None:
        raise algorithm_not_found(algorithm_id)
    require_workspace(session, principal, algorithm.workspace_id, action=action)
    return algorithm


def show(session: Session, principal: Principal, algorithm_id: str) -> dict[str, Any]:
    return to_wire(_require(session, principal, algorithm_id, "modelarts:aiAlgorithm:get"))


def change(
    session: Session,
    principal: Principal,
    algorithm_id: str,
    body: schemas.ChangeAlgorithm,
    settings: Settings,
    now_ms: int,
) -> dict[str, Any]:
    algorithm = _require(session, principal, algorithm_id, "modelarts:aiAlgorithm:update")
    metadata = body.metadata
    if metadata is not None:
        if metadata.name is not None and metadata.name != algorithm.name:
            raise invalid_param("the name of an algorithm cannot be changed; create a new algorithm instead.")
        if metadata.workspace_id is not None and metadata.workspace_id != algorithm.workspace_id:
            raise invalid_param("an algorithm cannot move to another workspace.")
    if body.job_config is not None:
        _apply_job_config(algorithm, settings, body.job_config)
    if metadata is not None:
        if metadata.description is not None:
            algorithm.description = metadata.description
        if metadata.tags is not None:
            algorithm.tags = _tags(metadata.tags)
    if body.resource_requirements is not None:
        algorithm.resource_requirements = _requirements(body.resource_requirements)
    if body.advanced_config is not None:
        algorithm.auto_search = _auto_search(body.advanced_config)
    algorithm.update_time = now_ms
    session.flush()
    return to_wire(algorithm)


def delete(session: Session, principal: Principal, algorithm_id: str) -> None:
    """Jobs keep their own copy of the algorithm they started from, so deleting it never breaks one."""
    algorithm = _require(session, principal, algorithm_id, "modelarts:aiAlgorithm:delete")
    session.delete(algorithm)
    session.flush()


# --- list --------------------------------------------------------------------------------------


def _searches(searches: str | None) -> list[ColumnElement[bool]]:
    """``searches`` holds ``key:value`` conditions separated by ``;``; only ``name`` (a case-insensitive
    substring) is supported."""
    conditions: list[ColumnElement[bool]] = []
    for part in (searches or "").split(";"):
        if not part.strip():
            continue
        key, separator, value = part.partition(":")
        if not separator:
            raise invalid_param(f"searches must be key:value conditions, got {part!r}.")
        if key.strip() != "name":
            raise training_error("2789", "UnsupportedFilterBy", f"cannot search by {key.strip()}.", "Search by name.")
        conditions.append(contains(Algorithm.name, value))
    return conditions


def _scope(session: Session, principal: Principal, workspace_id: str | None) -> Select[Any]:
    """The algorithms the caller may list: one workspace it may use, or every workspace it may use."""
    query = select(Algorithm).where(Algorithm.project_id == principal.project_id)
    if workspace_id is not None:
        require_workspace(session, principal, workspace_id, action="modelarts:aiAlgorithm:list")
        return query.where(Algorithm.workspace_id == workspace_id)
    joined = and_(Workspace.project_id == Algorithm.project_id, Workspace.id == Algorithm.workspace_id)
    return query.join(Workspace, joined).where(accessible_clause())


def _count(session: Session, query: Select[Any], params: dict[str, Any]) -> int:
    return session.scalar(select(func.count()).select_from(query.subquery()), params) or 0


def list_algorithms(session: Session, principal: Principal, query: schemas.ListQuery) -> dict[str, Any]:
    """``total`` counts every algorithm in scope, ``count`` those matching ``searches`` (as ModelArts
    documents them), ``items`` the page."""
    column = SORT_COLUMNS.get(query.sort_by)
    if column is None:
        raise training_error(
            "2790", "UnsupportedSortBy", f"cannot sort by {query.sort_by}.", "Sort by create_time, update_time or name."
        )
    if query.group_by:
        raise invalid_param("group_by is not supported for algorithms.")
    conditions = _searches(query.searches)
    scope = _scope(session, principal, query.workspace_id)
    params = accessible_params(principal)
    matching = scope.where(*conditions)
    direction = asc if query.order == "asc" else desc
    page = matching.order_by(direction(column), direction(Algorithm.id)).limit(query.limit).offset(query.offset)
    algorithms = session.scalars(page, params).all()
    total = _count(session, scope, params)
    return {
        "total": total,
        "count": _count(session, matching, params) if conditions else total,
        "limit": query.limit,
        "offset": query.offset,
        "sort_by": query.sort_by,
        "order": query.order,
        "group_by": query.group_by or "",
        "items": [to_wire(algorithm) for algorithm in algorithms],
    }
