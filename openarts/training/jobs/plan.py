"""From a create request to a launch plan: every reference resolved and checked once, at create time.

The plan is stored with the job, so the controller (also after a restart) runs exactly what was
accepted, and every mistake a user can make is a 400 at create instead of a failed job later.
"""

from __future__ import annotations

import shlex
from typing import Any

from sqlalchemy.orm import Session

from openarts.compute.capacity import Demand, fits_machine, machine_capacity
from openarts.compute.engines import Engine, default_engine, find_engine
from openarts.compute.flavors import Flavor, find_flavor
from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.storage.paths import ObsPath, parse_obs_url
from openarts.storage.store import ObjectStore
from openarts.training.jobs import errors
from openarts.training.jobs.schemas import AlgorithmIn, CreateJob, DataIn

PYTHON_COMMANDS = {"python", "python3"}


def _obs(value: str, what: str) -> ObsPath:
    try:
        return parse_obs_url(value)
    except ApiError as exc:
        raise ApiError(exc.status, exc.code, f"{what}: {exc.message}") from None


def _engine(settings: Settings, algorithm: AlgorithmIn) -> Engine:
    requested = algorithm.engine
    if requested is None or not (requested.engine_id or requested.engine_name or requested.image_url):
        return default_engine(settings)
    if requested.image_url:
        raise errors.engine_not_found("container images (engine.image_url) cannot run here; choose a local engine.")
    engine = find_engine(
        settings,
        engine_id=requested.engine_id,
        engine_name=requested.engine_name,
        engine_version=requested.engine_version,
    )
    if engine is None:
        wanted = requested.engine_id or f"{requested.engine_name} {requested.engine_version or ''}".strip()
        raise errors.engine_not_found(f"engine {wanted} does not exist.")
    return engine


def _node_count(settings: Settings, body: CreateJob, algorithm: AlgorithmIn) -> int:
    """On how many nodes the job runs, one process on each with the rendezvous variables a distributed
    script reads (RANK, WORLD_SIZE, MASTER_ADDR...: see compute/ray_entry.py). Several nodes need a
    cluster, so only the Ray executor runs them; a search's trials are one process each."""
    nodes = body.spec.resource.node_count
    if nodes == 1:
        return 1
    if (algorithm.policies or {}).get("auto_search"):
        raise errors.search_on_several_nodes(nodes)
    if settings.executor != "ray":
        raise errors.several_nodes_need_ray(nodes)
    return nodes


def _flavor(settings: Settings, body: CreateJob, nodes: int) -> Flavor:
    resource = body.spec.resource
    if resource.pool_id or resource.pool_group_id:
        raise errors.invalid_param("dedicated resource pools do not exist here; give spec.resource.flavor_id.")
    if not resource.flavor_id:
        raise errors.invalid_param("spec.resource.flavor_id is required.")
    flavor = find_flavor(settings, resource.flavor_id)
    if flavor is None:
        raise errors.flavor_not_found(resource.flavor_id)
    demand = Demand("", float(flavor.cpu_cores * nodes), float(flavor.memory_gb * nodes))
    if settings.strict_flavors and not fits_machine(demand, machine_capacity(settings)):
        what = flavor.flavor_id if nodes == 1 else f"{nodes} nodes of {flavor.flavor_id}"
        raise errors.unsupported_flavor(f"{what} needs more than this machine has.")
    return flavor


def _data(items: list[DataIn], kind: str, store: ObjectStore, must_exist: bool) -> list[dict[str, str]]:
    resolved = []
    for item in items:
        if item.remote is None or item.remote.obs is None:
            raise errors.inputs_outputs(f"{kind} {item.name} needs remote.obs.obs_url.")
        path = _obs(item.remote.obs.obs_url, f"{kind} {item.name}")
        if must_exist and not store.exists(path):
            raise errors.inputs_outputs(f"{kind} {item.name}: {path.url()} does not exist.")
        if kind == "output" and not path.is_dir:
            raise errors.inputs_outputs(f"output {item.name}: obs_url must be a folder (end with '/').")
        resolved.append({"name": item.name, "obs_url": path.url(), "access_method": item.access_method})
    return resolved


def _entry(algorithm: AlgorithmIn, store: ObjectStore) -> dict[str, Any]:
    """Where the code comes from and how it starts: code_dir + boot_file, or a command."""
    has_boot = bool(algorithm.boot_file)
    if has_boot == bool(algorithm.command):
        raise errors.invalid_param("give the algorithm either code_dir and boot_file, or a command (not both).")
    code = None
    if algorithm.code_dir:
        code = _obs(algorithm.code_dir, "code_dir")
        if not code.is_dir:
            raise errors.code_dir("code_dir must be a folder (end with '/').")
        if not store.exists(code):
            raise errors.code_dir(f"{code.url()} does not exist.")
    if has_boot:
        assert algorithm.boot_file is not None
        if code is None:
            raise errors.code_dir("a boot_file needs its code_dir.")
        boot = _obs(algorithm.boot_file, "boot_file")
        if boot.bucket != code.bucket or not boot.key.startswith(code.key) or boot.is_dir:
            raise errors.boot_file(f"{boot.url()} is not a file in {code.url()}.")
        if not store.exists(boot):
            raise errors.boot_file(f"{boot.url()} does not exist.")
        return {"code_dir": code.url(), "boot_file": boot.key[len(code.key) :], "command": None}
    assert algorithm.command is not None
    try:
        command = shlex.split(algorithm.command)  # split like a shell would, but no shell runs it
    except ValueError as exc:
        raise errors.invalid_param(f"algorithm.command cannot be split into arguments: {exc}.") from None
    if not command:
        raise errors.invalid_param("algorithm.command is empty.")
    return {"code_dir": code.url() if code else None, "boot_file": None, "command": command}


def resolve(
    settings: Settings, store: ObjectStore, session: Session, principal: Principal, body: CreateJob
) -> tuple[dict[str, Any], dict[str, Any], Flavor]:
    """(the algorithm as the job echoes it, the launch plan, the flavor) of a create request."""
    algorithm = body.algorithm
    if algorithm.subscription_id or algorithm.item_version_id:
        raise errors.invalid_param("subscribed algorithms do not exist here; give an algorithm id or code.")
    if algorithm.id:
        from openarts.training.algorithms.service import algorithm_to_wire, get_algorithm

        stored = AlgorithmIn.model_validate(
            {
                k: v
                for k, v in algorithm_to_wire(get_algorithm(session, principal, algorithm.id)).items()
                if v is not None
            }
            | {"id": None}
        )
        algorithm = _merge(stored, algorithm)
    engine = _engine(settings, algorithm)
    nodes = _node_count(settings, body, algorithm)
    flavor = _flavor(settings, body, nodes)
    entry = _entry(algorithm, store)
    names = [p.name for p in algorithm.parameters] + [d.name for d in algorithm.inputs + algorithm.outputs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise errors.invalid_param(f"parameter, input and output names must differ: {', '.join(duplicates)}.")
    plan = {
        **entry,
        "python": engine.python,
        "parameters": [[p.name, p.value] for p in algorithm.parameters],
        "inputs": _data(algorithm.inputs, "input", store, must_exist=True),
        "outputs": _data(algorithm.outputs, "output", store, must_exist=False),
        "environments": dict(algorithm.environments or {}),
        # Per node: the flavor's cores (what a cluster places the job by), memory and GPUs.
        "cpus": flavor.cpu_cores,
        "memory_mb": flavor.memory_gb * 1024,
        # CPU flavors see no GPU at all; GPU flavors get free cards at launch (the controller picks them).
        "gpus": list(range(flavor.gpu_count)),
        "node_count": nodes,
        "auto_stop_s": body.spec.auto_stop.duration * 3600 if body.spec.auto_stop else None,
    }
    search = _search(settings, algorithm, flavor, body.metadata.annotations or {})
    if search is not None:
        plan["search"] = search
    echoed = algorithm.model_dump(exclude_none=True)
    echoed["id"] = body.algorithm.id
    echoed["engine"] = {
        "engine_id": engine.engine_id,
        "engine_name": engine.engine_name,
        "engine_version": engine.engine_version,
    }
    echoed["parameters"] = [_parameter_with_defaults(p) for p in echoed.get("parameters", [])]
    echoed.setdefault("policies", {})
    return {k: v for k, v in echoed.items() if v is not None}, plan, flavor


def _search(
    settings: Settings, algorithm: AlgorithmIn, flavor: Flavor, annotations: dict[str, str]
) -> dict[str, Any] | None:
    """A job whose algorithm carries ``policies.auto_search`` runs as a hyperparameter search."""
    auto = (algorithm.policies or {}).get("auto_search")
    if not auto:
        return None
    from openarts.autosearch import algorithms, space

    if not isinstance(auto, dict):
        raise space.search_params_error("policies.auto_search must be an object.")
    search_params = auto.get("search_params") or []
    reward_attrs = auto.get("reward_attrs") or []
    algo_configs = auto.get("algo_configs") or []
    for value, what in (
        (search_params, "search_params"),
        (reward_attrs, "reward_attrs"),
        (algo_configs, "algo_configs"),
    ):
        if not isinstance(value, list):
            raise space.search_params_error(f"auto_search.{what} must be a list.")
    space.parse_space(search_params)
    space.parse_reward_attrs(reward_attrs)
    algorithms.parse_algo_configs(algo_configs)
    # Trials share the job's flavor: one CPU each, never more at once than the machine has.
    cpus = machine_capacity(settings).cpus
    return {
        "search_params": search_params,
        "reward_attrs": reward_attrs,
        "algo_configs": algo_configs,
        "parallelism": max(1, min(flavor.cpu_cores, int(cpus))),
        "early_stop": _early_stop(annotations),
    }


EARLY_STOP_ANNOTATION = "autosearch/early-stopping"


def _early_stop(annotations: dict[str, str]) -> str | None:
    """The automatic early-stopping rule a search asked for in its job's annotations (none by default)."""
    from openarts.autosearch import space

    rule = annotations.get(EARLY_STOP_ANNOTATION)
    if rule in (None, "", "none"):
        return None
    if rule != "median":
        raise space.search_params_error(f"annotation {EARLY_STOP_ANNOTATION} takes median or none, not {rule!r}.")
    return rule


def _merge(stored: AlgorithmIn, override: AlgorithmIn) -> AlgorithmIn:
    """A job's own parameters, inputs and outputs refine those of the algorithm it names."""
    merged = stored.model_copy(deep=True)
    by_name = {p.name: p for p in merged.parameters}
    for parameter in override.parameters:
        by_name[parameter.name] = parameter
    merged.parameters = list(by_name.values())
    for attribute in ("inputs", "outputs"):
        given = {d.name: d for d in getattr(override, attribute)}
        declared = getattr(merged, attribute)
        names = {d.name for d in declared}
        setattr(
            merged,
            attribute,
            [given.get(d.name, d) for d in declared] + [d for n, d in given.items() if n not in names],
        )
    if override.environments:
        merged.environments = {**(merged.environments or {}), **override.environments}
    if override.engine is not None:
        merged.engine = override.engine
    return merged


def _parameter_with_defaults(parameter: dict[str, Any]) -> dict[str, Any]:
    constraint = {
        "type": "String",
        "editable": True,
        "required": True,
        "sensitive": False,
        "valid_type": "None",
        "valid_range": [],
        **(parameter.get("constraint") or {}),
    }
    return {**parameter, "constraint": constraint}
