"""Service rules: deploy, update (start, stop, new config), delete, show, list, events, logs, monitor and
specifications. Processes are the controller's (``controller.py``): a request records intent and returns.

Callable without an HTTP request (the workflow ``service`` step): ``deploy_service(...)["service_id"]``,
``update_service(...)``, ``service_status(...)`` and ``access_address(...)``.
"""

from __future__ import annotations

import re
import secrets
import threading
from typing import Any

from sqlalchemy import ColumnElement, asc, desc, func, select
from sqlalchemy.orm import Session

from openarts.compute import claims
from openarts.compute.capacity import Demand, admit, fits_machine, machine_capacity
from openarts.compute.executor import ProcessHandle
from openarts.compute.flavors import Flavor, catalogue
from openarts.compute.local import LocalExecutor
from openarts.config import Settings
from openarts.core import ids
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.models import service as models
from openarts.models.tables import Model
from openarts.services import errors
from openarts.services.routing import TABLE
from openarts.services.schemas import (
    ConfigIn,
    DeployService,
    EventsQuery,
    ListServicesQuery,
    ScheduleIn,
    UpdateService,
)
from openarts.services.tables import Service, ServiceInstance
from openarts.workspaces import quotas
from openarts.workspaces import service as workspace_service
from openarts.workspaces.access import can_access, require_workspace
from openarts.workspaces.tables import Workspace

DEPLOYING, RUNNING, CONCERNING, FAILED, STOPPING, STOPPED, DELETING = (
    "deploying",
    "running",
    "concerning",
    "failed",
    "stopping",
    "stopped",
    "deleting",
)
# The controller has work to do for these; these hold their instances' share of the capacity pool.
ACTIVE = (DEPLOYING, RUNNING, CONCERNING, STOPPING, DELETING)
HOLDING = (DEPLOYING, RUNNING, CONCERNING, STOPPING)
SERVING = (RUNNING, CONCERNING)
CUSTOM = "custom"
MAX_INSTANCES = 128
_NAME = re.compile(r"[\w-]{1,64}")
_DESCRIPTION_FORBIDDEN = set("!<>+&\"'")
TIME_UNITS = {"DAYS": 86_400_000, "HOURS": 3_600_000, "MINUTES": 60_000}
SORT_COLUMNS = {"publish_at": Service.publish_at, "service_name": Service.name, "transition_at": Service.transition_at}
INFERS_PREFIX = "/v1/infers/"

# Set once a change the controller must act on is committed, and when an instance's process exits.
wake_controller = threading.Event()
_usage_executor = LocalExecutor()  # only to measure instances for monitor; it starts nothing


# --- specifications and capacity -----------------------------------------------------------------------


def _flavor(settings: Settings, entry: ConfigIn) -> Flavor:
    """The specification as a flavor; ``custom`` takes ``custom_spec`` (cpu cores, memory in MB) as is."""
    if entry.specification == CUSTOM:
        spec = entry.custom_spec
        if spec is None or spec.cpu is None or spec.memory is None:
            raise errors.invalid("custom_spec", None, "specification custom needs custom_spec with cpu and memory.")
        if spec.cpu < 0.01 or spec.memory < 1:
            raise errors.invalid("custom_spec", spec.model_dump(exclude_none=True), "cpu >= 0.01 and memory >= 1 MB.")
        if spec.gpu_p4 or spec.gpu or spec.ascend_a310:
            raise errors.invalid("custom_spec", spec.model_dump(exclude_none=True), "OpenArts serves on CPUs only.")
        return Flavor(CUSTOM, "custom", "CPU", cpu_cores=0, memory_gb=0)
    flavor = next((f for f in catalogue(settings) if f.flavor_id == entry.specification), None)
    if flavor is None:
        names = ", ".join([f.flavor_id for f in catalogue(settings)] + [CUSTOM])
        raise errors.invalid("specification", entry.specification, f"use one of {names}.")
    return flavor


def _instance_demand(settings: Settings, entry: ConfigIn) -> tuple[float, float]:
    """(CPUs, GB) one instance of the entry takes from the pool."""
    flavor = _flavor(settings, entry)
    if flavor.flavor_id == CUSTOM:
        assert entry.custom_spec is not None and entry.custom_spec.cpu is not None
        return float(entry.custom_spec.cpu), float(entry.custom_spec.memory or 0) / 1024
    return float(flavor.cpu_cores), float(flavor.memory_gb)


def _held_capacity(session: Session) -> list[Demand]:
    rows = session.execute(select(Service.id, Service.cpus, Service.memory_gb).where(Service.status.in_(HOLDING))).all()
    return [Demand(r.id, r.cpus, r.memory_gb) for r in rows]


claims.register_holder("services", _held_capacity)


def _require_capacity(session: Session, settings: Settings, key: str, cpus: float, memory_gb: float) -> None:
    """A service starts only if the pool has room for all its instances now: it never queues."""
    capacity = machine_capacity(settings)
    held = [demand for demand in claims.held(session) if demand.key != key]
    demand = Demand(key, cpus, memory_gb)
    # Unlike a training job, a service larger than the machine is refused: it would hold it for good.
    if not fits_machine(demand, capacity) or not admit([demand], held, capacity):
        free_cpus = capacity.cpus - sum(d.cpus for d in held)
        free_memory = capacity.memory_gb - sum(d.memory_gb for d in held)
        raise errors.no_resources(
            f"the instances need {cpus:g} CPUs and {memory_gb:g} GB, and the capacity pool has "
            f"{max(free_cpus, 0):g} CPUs and {max(free_memory, 0):g} GB free. Stop a service or a notebook, or "
            "choose a smaller custom_spec."
        )


def list_specifications(settings: Settings) -> dict[str, Any]:
    specs = [
        {
            "specification": flavor.flavor_id,
            "billing_spec": flavor.flavor_id,
            "spec_status": "normal",
            "is_open": True,
            "source_type": "",
            "is_free": False,
            "over_quota": False,
            "extend_params": None,
            "display_en": flavor.flavor_name,
            "display_cn": flavor.flavor_name,
        }
        for flavor in catalogue(settings)
    ]
    return {"specifications": specs}


# --- config -------------------------------------------------------------------------------------------------


def _resolve_config(
    session: Session, settings: Settings, principal: Principal, entries: list[ConfigIn], infer_type: str
) -> tuple[list[dict[str, Any]], float, float]:
    """The config as stored and shown, and what all its instances take from the pool (CPUs, GB)."""
    if not entries:
        raise errors.required("config")
    seen: set[str] = set()
    resolved: list[dict[str, Any]] = []
    cpus = memory_gb = 0.0
    for entry in entries:
        if entry.model_id in seen:
            raise errors.duplicate_models(entry.model_id)
        seen.add(entry.model_id)
        try:
            model = models.get_model(session, principal, entry.model_id)
        except ApiError:
            raise errors.model_missing(entry.model_id) from None
        if model.status != models.PUBLISHED:
            raise errors.model_not_published(entry.model_id, model.status)
        if infer_type not in (model.request.get("install_type") or ["real-time", "batch"]):
            raise errors.wrong_install_type(entry.model_id, infer_type)
        if not 1 <= entry.instance_count <= MAX_INSTANCES:
            raise errors.invalid("instance_count", entry.instance_count, f"use 1 to {MAX_INSTANCES}.")
        if entry.weight is None and len(entries) > 1:
            raise errors.required("weight")
        weight = 100 if entry.weight is None else entry.weight
        if not 0 <= weight <= 100:
            raise errors.invalid("weight", weight, "use 0 to 100.")
        instance_cpus, instance_memory = _instance_demand(settings, entry)
        cpus += instance_cpus * entry.instance_count
        memory_gb += instance_memory * entry.instance_count
        resolved.append(
            {
                "model_id": model.id,
                "model_name": model.name,
                "model_version": model.version,
                "source_type": model.request.get("source_type", ""),
                "status": "notReady",
                "weight": weight,
                "specification": entry.specification,
                "custom_spec": entry.custom_spec.model_dump(exclude_none=True) if entry.custom_spec else {},
                "envs": dict(entry.envs or {}),
                "instance_count": entry.instance_count,
                "scaling": False,
                "cluster_id": entry.cluster_id or "",
                "support_debug": False,
                "additional_properties": entry.additional_properties or {},
                "deploy_timeout_in_seconds": entry.deploy_timeout_in_seconds,
            }
        )
    if sum(item["weight"] for item in resolved) != 100:
        raise errors.invalid("weight", [item["weight"] for item in resolved], "the weights must add up to 100.")
    return resolved, cpus, memory_gb


def _due_time(schedule: list[ScheduleIn] | None, now_ms: int) -> int | None:
    for item in schedule or []:
        if item.type != "stop":
            raise errors.invalid("schedule.type", item.type, "only stop is supported.")
        if item.time_unit not in TIME_UNITS:
            raise errors.invalid("schedule.time_unit", item.time_unit, f"use {', '.join(TIME_UNITS)}.")
        if item.duration <= 0:
            raise errors.due_time_past()
    stops = [now_ms + item.duration * TIME_UNITS[item.time_unit] for item in schedule or []]
    return min(stops) if stops else None


def _event(now_ms: int, info: str, kind: str = "normal") -> dict[str, Any]:
    return {"occur_time": now_ms, "event_type": kind, "event_info": info}


def add_event(service: Service, now_ms: int, info: str, kind: str = "normal") -> None:
    service.events = [*service.events, _event(now_ms, info, kind)]


# --- deploy ---------------------------------------------------------------------------------------------------


def deploy_service(
    session: Session, settings: Settings, principal: Principal, body: DeployService, now_ms: int
) -> dict[str, Any]:
    """Record the service as ``deploying``; the controller starts its instances. ``{service_id, resource_ids}``."""
    if not _NAME.fullmatch(body.service_name):
        raise errors.invalid("service_name", body.service_name, "1-64 letters, digits, - or _.")
    if body.description is not None and (len(body.description) > 100 or _DESCRIPTION_FORBIDDEN & set(body.description)):
        raise errors.invalid("description", body.description, "at most 100 characters, none of !<>+&\"'.")
    if body.infer_type != "real-time":
        raise errors.invalid(
            "infer_type", body.infer_type, "OpenArts deploys real-time services (batch and edge are not available)."
        )
    workspace_id = body.workspace_id or ids.DEFAULT_WORKSPACE_ID
    quotas.check_quota(session, principal, workspace_id, "service.num")
    taken = session.scalar(
        select(Service.id).where(Service.project_id == principal.project_id, Service.name == body.service_name)
    )
    if taken is not None:
        raise errors.already_exists(body.service_name)
    config, cpus, memory_gb = _resolve_config(session, settings, principal, body.config, body.infer_type)
    due_time = _due_time(body.schedule, now_ms)
    service_id = ids.uuid4()
    _require_capacity(session, settings, service_id, cpus, memory_gb)
    extras = {
        key: value
        for key, value in body.model_dump(
            include={
                "vpc_id",
                "subnet_network_id",
                "security_group_id",
                "cluster_id",
                "pool_name",
                "additional_properties",
                "load_balancer_policy",
                "priority",
            }
        ).items()
        if value is not None
    }
    extras["resource_id"] = f"INF-{secrets.token_hex(8)}@{now_ms}"
    service = Service(
        id=service_id,
        project_id=principal.project_id,
        workspace_id=workspace_id,
        user_id=principal.user_id,
        user_name=principal.user_name,
        name=body.service_name,
        description=body.description or "",
        infer_type=body.infer_type,
        status=DEPLOYING,
        progress=0,
        config=config,
        schedule=[item.model_dump() for item in body.schedule] if body.schedule else None,
        due_time=due_time,
        extras=extras,
        cpus=cpus,
        memory_gb=memory_gb,
        publish_at=now_ms,
        update_time=now_ms,
        transition_at=now_ms,
        deploy_started_at=now_ms,
        counters={},
        events=[_event(now_ms, "start to deploy service")],
        logs=[],
    )
    session.add(service)
    session.flush()
    return {"service_id": service_id, "resource_ids": [extras["resource_id"]]}


# --- find, show, list -----------------------------------------------------------------------------------------


def get_service(session: Session, principal: Principal, service_id: str) -> Service:
    """The service, if the caller may see it; services of workspaces it may not use look absent (3502)."""
    service = session.get(Service, service_id)
    if service is None or service.project_id != principal.project_id or service.status == DELETING:
        raise errors.not_found(service_id)
    workspace = session.get(Workspace, (service.project_id, service.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise errors.not_found(service_id)
    return service


def service_status(session: Session, principal: Principal, service_id: str) -> tuple[str, str]:
    """(status, error_msg) of a service: what a workflow step polls."""
    service = get_service(session, principal, service_id)
    return service.status, service.error_msg


def access_address(base_url: str, service_id: str) -> str:
    """Where a running real-time service is called: ``<server>/v1/infers/<service_id>``."""
    return base_url.rstrip("/") + INFERS_PREFIX + service_id


def _counts(service: Service) -> tuple[int, int, dict[str, list[int]]]:
    """Calls and failures, the row's and those not yet folded in (see routing.py), in total and per model."""
    per_model = {model: list(pair) for model, pair in service.counters.items()}
    for model, (calls, failures) in TABLE.pending(service.id).items():
        pair = per_model.setdefault(model, [0, 0])
        pair[0] += calls
        pair[1] += failures
    pending = TABLE.pending(service.id)
    calls = service.invocation_times + sum(pair[0] for pair in pending.values())
    failures = service.failed_times + sum(pair[1] for pair in pending.values())
    return calls, failures, per_model


def _list_item(service: Service) -> dict[str, Any]:
    calls, failures, _ = _counts(service)
    item: dict[str, Any] = {
        "service_id": service.id,
        "service_name": service.name,
        "description": service.description,
        "tenant": service.project_id,
        "project": service.project_id,
        "owner": service.user_id,
        "publish_at": service.publish_at,
        "infer_type": service.infer_type,
        "workspace_id": service.workspace_id,
        "status": service.status,
        "progress": service.progress,
        "invocation_times": calls,
        "failed_times": failures,
        "is_shared": False,
        "shared_count": 0,
        "operation_time": service.transition_at,
        "is_opened_sample_collection": "false",
        "transition_at": service.transition_at,
        "is_free": False,
        "additional_properties": service.extras.get("additional_properties") or {},
    }
    if service.schedule:
        item["schedule"] = service.schedule
    if service.due_time is not None:
        item["due_time"] = service.due_time
    return item


def _config_statuses(session: Session, service: Service) -> dict[str, str]:
    """Per model: ``ready`` (every instance answers), ``concerning`` (some do), ``notReady`` (none)."""
    rows = session.execute(
        select(ServiceInstance.model_id, ServiceInstance.ready).where(ServiceInstance.service_id == service.id)
    ).all()
    statuses: dict[str, str] = {}
    for entry in service.config:
        ready = [row.ready for row in rows if row.model_id == entry["model_id"]]
        up = sum(ready)
        statuses[entry["model_id"]] = (
            "ready" if up and up >= entry["instance_count"] else "concerning" if up else "notReady"
        )
    return statuses


def _wire_config(entry: dict[str, Any], status: str) -> dict[str, Any]:
    wire = {key: value for key, value in entry.items() if key != "deploy_timeout_in_seconds"}
    wire["status"] = status
    return wire


def show_service(session: Session, principal: Principal, service_id: str, base_url: str) -> dict[str, Any]:
    service = get_service(session, principal, service_id)
    statuses = _config_statuses(session, service)
    wire = _list_item(service)
    extras = service.extras
    wire.update(
        {
            "cluster_id": extras.get("cluster_id", ""),
            "pool_name": extras.get("pool_name", ""),
            "vpc_id": extras.get("vpc_id", ""),
            "subnet_network_id": extras.get("subnet_network_id", ""),
            "security_group_id": extras.get("security_group_id", ""),
            "error_msg": service.error_msg,
            "config": [_wire_config(entry, statuses[entry["model_id"]]) for entry in service.config],
            "update_time": service.update_time,
            "debug_url": "",
            "load_balancer_policy": extras.get("load_balancer_policy", "ROUND_ROBIN"),
            "priority": extras.get("priority", 1),
            "bind_access_address": "",
        }
    )
    if service.status in SERVING:
        wire["access_address"] = access_address(base_url, service.id)
    return wire


def list_services(session: Session, principal: Principal, query: ListServicesQuery) -> dict[str, Any]:
    require_workspace(session, principal, query.workspace_id, action="list services")
    if query.sort_by not in SORT_COLUMNS:
        raise errors.invalid("sort_by", query.sort_by, f"use {', '.join(SORT_COLUMNS)}.")
    if query.order not in ("asc", "desc"):
        raise errors.invalid("order", query.order, "use asc or desc.")
    conditions: list[ColumnElement[bool]] = [
        Service.project_id == principal.project_id,
        Service.workspace_id == query.workspace_id,
        Service.status != DELETING,
    ]
    if query.service_id:
        conditions.append(Service.id == query.service_id)
    if query.service_name:
        conditions.append(contains(Service.name, query.service_name))
    if query.infer_type:
        conditions.append(Service.infer_type == query.infer_type)
    if query.status:
        conditions.append(Service.status == query.status)
    rows = list(
        session.scalars(
            select(Service)
            .where(*conditions)
            .order_by((asc if query.order == "asc" else desc)(SORT_COLUMNS[query.sort_by]), Service.id)
        ).all()
    )
    if query.model_id:  # config is JSON: filtered here, the same way on SQLite and PostgreSQL
        rows = [row for row in rows if any(entry["model_id"] == query.model_id for entry in row.config)]
    page = rows[query.offset : query.offset + query.limit]
    items = [_list_item(row) for row in page]
    return {"total_count": len(rows), "count": len(items), "services": items}


# --- update and delete ----------------------------------------------------------------------------------------


def update_service(
    session: Session, settings: Settings, principal: Principal, service_id: str, body: UpdateService, now_ms: int
) -> dict[str, Any]:
    """Reference 4.6: ``status`` (running/stopped) wins over ``config``; a config change is logged."""
    service = get_service(session, principal, service_id)
    if body.description is not None:
        if len(body.description) > 100 or _DESCRIPTION_FORBIDDEN & set(body.description):
            raise errors.invalid("description", body.description, "at most 100 characters, none of !<>+&\"'.")
        service.description = body.description
    if body.additional_properties is not None:
        service.extras = {**service.extras, "additional_properties": body.additional_properties}
    if body.schedule is not None:
        service.schedule = [item.model_dump() for item in body.schedule] or None
        service.due_time = _due_time(body.schedule, now_ms)
    if body.status is not None:
        _change_status(session, settings, service, body.status, now_ms)
    elif body.config is not None:
        _change_config(session, settings, principal, service, body.config, now_ms)
    return {}


def _change_status(session: Session, settings: Settings, service: Service, target: str, now_ms: int) -> None:
    if target not in (RUNNING, STOPPED):
        raise errors.invalid("status", target, "use running or stopped.")
    if target == service.status:
        raise errors.not_updatable(service.id, service.status, f"status {target}")
    if target == RUNNING:
        if service.status not in (STOPPED, FAILED):
            raise errors.not_updatable(service.id, service.status, "starting")
        _require_capacity(session, settings, service.id, service.cpus, service.memory_gb)
        service.status, service.progress, service.error_msg = DEPLOYING, 0, ""
        service.deploy_started_at = service.transition_at = now_ms
        if service.schedule:  # the auto-stop clock starts again with the service
            service.due_time = _due_time([ScheduleIn.model_validate(item) for item in service.schedule], now_ms)
        add_event(service, now_ms, "start to deploy service")
        return
    if service.status not in (DEPLOYING, RUNNING, CONCERNING, FAILED):
        raise errors.not_updatable(service.id, service.status, "stopping")
    request_stop(service, now_ms, "Start to stop the service")


def request_stop(service: Service, now_ms: int, info: str) -> None:
    service.status, service.stop_requested_at, service.transition_at = STOPPING, None, now_ms
    add_event(service, now_ms, info)
    TABLE.forget(service.id)


def _change_config(
    session: Session,
    settings: Settings,
    principal: Principal,
    service: Service,
    entries: list[ConfigIn],
    now_ms: int,
) -> None:
    if service.status in (DEPLOYING, STOPPING, DELETING):
        raise errors.not_updatable(service.id, service.status, "a config change")
    config, cpus, memory_gb = _resolve_config(session, settings, principal, entries, service.infer_type)
    if service.status in SERVING:
        _require_capacity(session, settings, service.id, cpus, memory_gb)
    log_entry = {
        "update_time": now_ms,
        "result": "RUNNING" if service.status in SERVING else "SUCCESS",
        "config": [_wire_config(entry, "notReady") for entry in config],
        "cluster_id": service.extras.get("cluster_id", ""),
        "extend_config": [],
    }
    service.logs = [*service.logs, log_entry]
    service.config, service.cpus, service.memory_gb = config, cpus, memory_gb
    service.update_time = now_ms
    if service.status in SERVING:  # the controller replaces the instances, then the update succeeds
        service.status, service.progress, service.deploy_started_at, service.transition_at = (
            DEPLOYING,
            0,
            now_ms,
            now_ms,
        )
        TABLE.forget(service.id)
        add_event(service, now_ms, "start to update service")


def delete_services(session: Session, principal: Principal, service_ids: str, now_ms: int) -> dict[str, Any]:
    """Reference 4.1: one id or a comma-separated list; every one must exist. The controller ends the
    instances and removes the rows."""
    wanted = [part.strip() for part in service_ids.split(",") if part.strip()]
    if not wanted:
        raise errors.required("service_id")
    found = [get_service(session, principal, service_id) for service_id in wanted]
    for service in found:
        service.status, service.transition_at = DELETING, now_ms
        TABLE.forget(service.id)
    return {}


# --- events, logs, monitor ------------------------------------------------------------------------------------


def list_events(session: Session, principal: Principal, service_id: str, query: EventsQuery) -> dict[str, Any]:
    service = get_service(session, principal, service_id)
    events = list(service.events)
    if query.event_type:
        events = [e for e in events if e["event_type"] == query.event_type]
    if query.event_info:
        events = [e for e in events if query.event_info.lower() in e["event_info"].lower()]
    if query.start_time is not None:
        events = [e for e in events if e["occur_time"] >= query.start_time]
    if query.end_time is not None:
        events = [e for e in events if e["occur_time"] <= query.end_time]
    events.sort(key=lambda e: e["occur_time"], reverse=query.order != "asc")
    page = events[query.offset : query.offset + query.limit]
    return {
        "service_id": service.id,
        "service_name": service.name,
        "total_count": len(events),
        "count": len(page),
        "events": page,
    }


def list_logs(session: Session, principal: Principal, service_id: str, update_time: int | None) -> dict[str, Any]:
    service = get_service(session, principal, service_id)
    logs = [log for log in service.logs if update_time is None or log["update_time"] == update_time]
    return {"service_id": service.id, "service_name": service.name, "logs": logs}


def monitor(session: Session, principal: Principal, service_id: str) -> dict[str, Any]:
    """Per model: calls, failures, and the CPU and memory its instances use now (numbers as strings,
    as ModelArts' example sends them)."""
    service = get_service(session, principal, service_id)
    _, _, per_model = _counts(service)
    instances = session.scalars(select(ServiceInstance).where(ServiceInstance.service_id == service.id)).all()
    monitors = []
    running_total = 0
    for entry in service.config:
        mine = [i for i in instances if i.model_id == entry["model_id"]]
        cpu = memory = 0.0
        running = 0
        for instance in mine:
            if instance.pid is None or instance.process_start_time is None:
                continue
            usage = _usage_executor.usage(ProcessHandle(instance.pid, instance.process_start_time))
            cpu += usage.cpu_percent / 100
            memory += usage.memory_mb
            running += int(instance.ready)
        running_total += running
        calls, failures = per_model.get(entry["model_id"], [0, 0])
        spec = entry.get("custom_spec") or {}
        monitors.append(
            {
                "model_id": entry["model_id"],
                "model_name": entry["model_name"],
                "model_version": entry["model_version"],
                "invocation_times": str(calls),
                "failed_times": str(failures),
                "cpu_core_usage": f"{cpu:.2f}",
                "cpu_core_total": str(spec.get("cpu", "")),
                "cpu_memory_usage": f"{memory:.0f}",
                "cpu_memory_total": str(spec.get("memory", "")),
                "gpu_usage": "0",
                "gpu_total": "0",
                "model_running_instance_count": running,
                "model_instance_count": entry["instance_count"],
            }
        )
    return {
        "service_id": service.id,
        "service_name": service.name,
        "monitors": monitors,
        "service_running_instance_count": running_total,
        "service_instance_count": sum(entry["instance_count"] for entry in service.config),
    }


# --- what other families ask --------------------------------------------------------------------------------


def _model_in_use(session: Session, model_id: str) -> bool:
    rows = session.scalars(select(Service.config).where(Service.status != DELETING)).all()
    return any(entry["model_id"] == model_id for config in rows for entry in config)


models.IN_USE_CHECKS.append(_model_in_use)


def _services_used(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Service.project_id == project_id, Service.workspace_id == workspace_id)
    return session.scalar(query) or 0


quotas.register_resource(
    quotas.QuotaSpec("service.num", "Real-time services", "在线服务数", "service", "个", max_quota=10000),
    _services_used,
)
workspace_service.resource_holders["services"] = _services_used


def model_type_of(session: Session, model_id: str) -> tuple[str, str] | None:
    """(model type, name) of a published model, for the controller's launch."""
    row = session.execute(select(Model.model_type, Model.name).where(Model.id == model_id)).first()
    return (row.model_type, row.name) if row is not None else None
