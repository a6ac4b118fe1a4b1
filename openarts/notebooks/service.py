"""Notebook rules: create, find, list, update, start, stop, delete, leases. Processes are the controller's.

A request records intent and returns: create leaves the instance CREATING, start STARTING, stop STOPPING,
delete DELETING; the controller (``controller.py``) drives each to where it is going and records it.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

from sqlalchemy import ColumnElement, and_, asc, desc, exists, func, or_, select
from sqlalchemy.orm import Session

from openarts.compute import claims
from openarts.compute.capacity import Demand, admit, machine_capacity
from openarts.compute.flavors import Flavor, catalogue
from openarts.config import Settings
from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.notebooks import errors
from openarts.notebooks.images import service as images
from openarts.notebooks.schemas import CreateNotebook, CustomSpecIn, EndpointIn, ListQuery, UpdateNotebook, VolumeIn
from openarts.notebooks.tables import Notebook, NotebookStorage, NotebookTag
from openarts.storage.paths import parse_obs_url
from openarts.workspaces import quotas
from openarts.workspaces import service as workspace_service
from openarts.workspaces.access import accessible_clause, accessible_params, can_access, require_workspace
from openarts.workspaces.tables import Workspace

# --- statuses (reference C.4) ----------------------------------------------------------------------------

CREATING, STARTING, RUNNING, STOPPING, STOPPED, DELETING = (
    "CREATING",
    "STARTING",
    "RUNNING",
    "STOPPING",
    "STOPPED",
    "DELETING",
)
CREATE_FAILED, START_FAILED, ERROR = "CREATE_FAILED", "START_FAILED", "ERROR"
STATUSES = (
    "INIT",
    CREATING,
    STARTING,
    STOPPING,
    DELETING,
    RUNNING,
    STOPPED,
    "SNAPSHOTTING",
    CREATE_FAILED,
    START_FAILED,
    "DELETE_FAILED",
    ERROR,
    "DELETED",
    "FROZEN",
)
# The controller has work to do for these.
ACTIVE = (CREATING, STARTING, RUNNING, STOPPING, DELETING)
# These hold their flavor's share of the capacity pool: a Jupyter server is (or is about to be) alive.
HOLDING = (CREATING, STARTING, RUNNING, STOPPING)
# Ended without a live server: they may be started again, updated and deleted.
AT_REST = (STOPPED, CREATE_FAILED, START_FAILED, ERROR)

WORK_MOUNT = "/home/ma-user/work/"
LEASE_MIN_MS = 3_600_000  # 1 hour
LEASE_MAX_MS = 259_200_000  # 72 hours
LEASE_TYPES = ("TIMING", "IDLE")
EVS_DEFAULT_GB, EVS_MIN_GB, EVS_MAX_GB = 5, 5, 4096
FEATURES = ("NOTEBOOK", "DEFAULT")
FREE_FLAVOR = "modelarts.vm.cpu.free"
CUSTOM_FLAVOR = "custom.flavor.spec.code"
# Letters (any script, so Chinese too), digits, - and _ (reference C.2).
_NAME = re.compile(r"[\w-]{1,128}")
_STORAGE_CATEGORIES = ("OBS", "OBSFS")

# Set once a change the controller must act on is committed, and when an instance's process exits.
wake_controller = threading.Event()


# --- the flavors a notebook may use (reference C.6) ----------------------------------------------------


def notebook_flavors(settings: Settings) -> list[Flavor]:
    """The machine's flavors, and the free CodeLab one (1 vCPU, 4 GB) that ``DEFAULT`` instances use."""
    free = Flavor(
        flavor_id=FREE_FLAVOR, flavor_name="CPU: 1vCPUs 4GB (free)", flavor_type="CPU", cpu_cores=1, memory_gb=4
    )
    return [*catalogue(settings), free]


def flavor_to_wire(flavor: Flavor, sold_out: bool) -> dict[str, Any]:
    """A ``NotebookFlavor``: memory in KB as the reference's example (8388608 for 8 GB)."""
    wire: dict[str, Any] = {
        "id": flavor.flavor_id,
        "name": flavor.flavor_id,
        "arch": "aarch64" if flavor.arch == "arm" else "x86_64",
        "category": flavor.flavor_type,
        "description": flavor.flavor_name,
        "feature": "DEFAULT" if flavor.flavor_id == FREE_FLAVOR else "NOTEBOOK",
        "free": flavor.flavor_id == FREE_FLAVOR,
        "sold_out": sold_out,
        "memory": flavor.memory_gb * 1024 * 1024,
        "vcpus": flavor.cpu_cores,
        "billing": {"code": flavor.flavor_id, "unit_num": 1},
        "storages": ["EVS", "OBS", "OBSFS"],
        "evs_max_size": str(EVS_MAX_GB),
        "grow_support_type": "NONE",
    }
    if flavor.gpu_count:
        wire["gpu"] = {
            "gpu": flavor.gpu_count,
            "gpu_memory": flavor.gpu_memory_gb or 0,
            "type": flavor.gpu_product or "",
        }
    return wire


def _flavor(settings: Settings, flavor_id: str, feature: str) -> Flavor:
    flavor = next((f for f in notebook_flavors(settings) if f.flavor_id == flavor_id), None)
    if flavor is None:
        raise errors.flavor_unsupported(flavor_id)
    if (flavor_id == FREE_FLAVOR) != (feature == "DEFAULT"):
        raise errors.notebook_error(
            "6870", f"The flavor {flavor_id} does not support the feature {feature}: {FREE_FLAVOR} is for DEFAULT."
        )
    return flavor


def _custom_flavor(spec: CustomSpecIn) -> Flavor:
    """A ``custom_spec`` as a flavor of its own: CPUs and memory (MB) taken as given."""
    if spec.cpu is None or spec.cpu < 0.4 or round(spec.cpu, 2) != spec.cpu:
        raise errors.bad_value("custom_spec.cpu must be at least 0.4 with at most two decimal places.")
    if spec.memory is None or spec.memory < 513 or spec.memory != int(spec.memory):
        raise errors.bad_value("custom_spec.memory must be a whole number of MB, at least 513.")
    if spec.gpu:
        raise errors.bad_value("custom_spec.gpu: custom specs with GPUs need a dedicated pool, which OpenArts has not.")
    return Flavor(
        flavor_id=CUSTOM_FLAVOR,
        flavor_name=f"custom: {spec.cpu}vCPUs {int(spec.memory)}MB",
        flavor_type="CPU",
        cpu_cores=math.ceil(spec.cpu),
        memory_gb=math.ceil(spec.memory / 1024),
    )


# --- the shared capacity pool ------------------------------------------------------------------------------


def _held_capacity(session: Session) -> list[Demand]:
    rows = session.execute(
        select(Notebook.id, Notebook.cpus, Notebook.memory_gb).where(Notebook.status.in_(HOLDING))
    ).all()
    return [Demand(r.id, r.cpus, r.memory_gb) for r in rows]


claims.register_holder("notebooks", _held_capacity)


def _require_capacity(
    session: Session, settings: Settings, key: str, flavor_id: str, cpus: float, memory: float
) -> None:
    """An instance starts only if the pool has room for it now: a notebook is interactive, it never queues."""
    capacity = machine_capacity(settings)
    held = [demand for demand in claims.held(session) if demand.key != key]
    if not admit([Demand(key, cpus, memory)], held, capacity):
        free_cpus = capacity.cpus - sum(d.cpus for d in held)
        free_memory = capacity.memory_gb - sum(d.memory_gb for d in held)
        raise errors.sold_out(
            flavor_id,
            f"it needs {cpus:g} CPUs and {memory:g} GB, and the capacity pool has {max(free_cpus, 0):g} CPUs and "
            f"{max(free_memory, 0):g} GB free. Stop an instance or wait for running jobs to end.",
        )


def _sold_out(session: Session, settings: Settings, flavor: Flavor) -> bool:
    capacity = machine_capacity(settings)
    return not admit([flavor.demand("?")], claims.held(session), capacity)


# --- quotas and workspaces --------------------------------------------------------------------------


def _instances_used(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Notebook.project_id == project_id, Notebook.workspace_id == workspace_id)
    return session.scalar(query) or 0


quotas.register_usage("notebook.num", _instances_used)
workspace_service.resource_holders["notebook instances"] = _instances_used


def _image_in_use(session: Session, image_id: str) -> bool:
    return session.scalar(select(exists().where(Notebook.image_id == image_id))) or False


images.IN_USE_CHECKS.append(_image_in_use)


# --- validation --------------------------------------------------------------------------------------------


def check_name(name: str) -> None:
    if not name:
        raise errors.required("name")
    if not _NAME.fullmatch(name):
        raise errors.bad_characters("name (1-128 letters, digits, - or _)")


def check_description(description: str) -> None:
    if len(description) > 512:
        raise errors.bad_value("The description is at most 512 characters.")
    if "<" in description or ">" in description:
        raise errors.bad_characters("description (no < or >)")


def lease_type(value: str | None) -> str:
    """ModelArts echoes the type in upper case though examples send ``timing``: accept either."""
    kind = (value or "TIMING").upper()
    if kind not in LEASE_TYPES:
        raise errors.bad_value(f"lease.type {value!r}: use TIMING or IDLE.")
    return kind


def lease_duration(value: int | None) -> int:
    duration = LEASE_MIN_MS if value is None else value
    if not LEASE_MIN_MS <= duration <= LEASE_MAX_MS:
        raise errors.duration_range(LEASE_MIN_MS, LEASE_MAX_MS)
    return duration


def _work_volume(volume: VolumeIn) -> dict[str, Any]:
    category = volume.category.upper()
    ownership = (volume.ownership or "MANAGED").upper()
    if category != "EVS":
        raise errors.bad_value(
            f"volume.category {volume.category!r}: the work volume is an EVS disk (use data_volumes or the "
            "storage endpoints to show an object-store folder in it)."
        )
    if ownership != "MANAGED":
        raise errors.bad_value(f"volume.ownership {volume.ownership!r}: an EVS volume is MANAGED.")
    capacity = EVS_DEFAULT_GB if volume.capacity is None else volume.capacity
    if not EVS_MIN_GB <= capacity <= EVS_MAX_GB:
        raise errors.evs_range(EVS_MIN_GB, EVS_MAX_GB)
    if volume.mount_path not in (None, WORK_MOUNT, WORK_MOUNT.rstrip("/")):
        raise errors.bad_value(f"volume.mount_path: the work volume is always mounted at {WORK_MOUNT}.")
    return {
        "category": "EVS",
        "ownership": "MANAGED",
        "capacity": capacity,
        "mount_path": WORK_MOUNT,
        "read_only": bool(volume.read_only),
        "status": "MOUNTED",
        "mount_type": "STATIC",
    }


def storage_folder(mount_path: str) -> str:
    """Where an object-store folder appears, relative to the work directory.

    Accepted: a path under ``/home/ma-user/work/`` (as ModelArts mounts them) or a relative one; never
    the work directory itself, never ``..``: the folder must stay inside the instance's work directory.
    """
    path = mount_path.strip()
    if path.startswith(WORK_MOUNT):
        path = path[len(WORK_MOUNT) :]
    elif path.startswith("/"):
        raise errors.bad_value(f"mount_path {mount_path!r} must be under {WORK_MOUNT}.")
    parts = [part for part in path.split("/") if part]
    if not parts or any(part in (".", "..") or "\0" in part for part in parts) or len(path) > 512:
        raise errors.bad_value(f"mount_path {mount_path!r} must name a folder inside {WORK_MOUNT}.")
    return "/".join(parts)


def check_storage(category: str, uri: str, mount_path: str) -> tuple[str, str, str]:
    """(category, obs url, folder) of an object-store mount, or a 400 saying what is wrong."""
    kind = category.upper()
    if kind not in _STORAGE_CATEGORIES:
        raise errors.bad_value(f"category {category!r}: only OBS and OBSFS folders can be mounted here.")
    path = parse_obs_url(uri)
    if not path.is_dir:
        path = path.as_dir()
    folder = storage_folder(mount_path)
    return kind, path.url(), folder


def _endpoints(endpoints: list[EndpointIn] | None) -> list[dict[str, Any]]:
    result = []
    for endpoint in endpoints or []:
        service = endpoint.service.upper()
        if service == "SSH":
            raise errors.notebook_error(
                "6768", "SSH endpoints are not available: instances are reached through JupyterLab on the server."
            )
        if service != "NOTEBOOK":
            raise errors.bad_value(f"endpoints.service {endpoint.service!r}: use NOTEBOOK.")
        result.append({"service": "NOTEBOOK", "key_pair_names": endpoint.key_pair_names or []})
    return result or [{"service": "NOTEBOOK", "key_pair_names": []}]


# --- create, find --------------------------------------------------------------------------------------------


def create(
    session: Session, settings: Settings, principal: Principal, body: CreateNotebook, now_ms: int, base_url: str
) -> dict[str, Any]:
    check_name(body.name)
    check_description(body.description)
    feature = body.feature.upper()
    if feature not in FEATURES:
        raise errors.bad_value(f"feature {body.feature!r}: use NOTEBOOK or DEFAULT.")
    if body.pool_id:
        raise errors.bad_value("pool_id: dedicated pools are not available; instances run on the shared pool.")
    workspace_id = body.workspace_id
    require_workspace(session, principal, workspace_id, action="modelarts:notebook:create", lock=True)
    quotas.check_quota(session, principal, workspace_id, "notebook.num")
    if feature == "DEFAULT" and _has_free_instance(session, principal):
        raise errors.notebook_error("6301", "A user may have one DEFAULT (free) instance, and you have one already.")
    if body.custom_spec is not None:
        flavor = _custom_flavor(body.custom_spec)
    elif body.flavor:
        flavor = _flavor(settings, body.flavor, feature)
    else:
        raise errors.required("flavor")
    image_runtime(session, principal.project_id, workspace_id, body.image_id)
    volume = _work_volume(body.volume)
    duration = lease_duration(
        body.duration if body.duration is not None else (body.lease.duration if body.lease else None)
    )
    kind = lease_type(body.lease.type if body.lease else None)
    storages = [check_storage(v.category, v.uri or "", v.mount_path or "") for v in body.data_volumes or []]
    if len({folder for _, _, folder in storages}) != len(storages):
        raise errors.bad_value("Two data volumes have the same mount_path.")
    notebook_id = ids.uuid4()
    _require_capacity(session, settings, notebook_id, flavor.flavor_id, flavor.cpu_cores, flavor.memory_gb)
    extras: dict[str, Any] = {
        key: value
        for key, value in body.model_dump(
            include={"hooks", "affinity", "run_user", "user_vpc", "public_network_config"}
        ).items()
        if value is not None
    }
    if body.custom_spec is not None:
        extras["custom_spec"] = body.custom_spec.model_dump(exclude_none=True)
    notebook = Notebook(
        id=notebook_id,
        project_id=principal.project_id,
        workspace_id=workspace_id,
        user_id=principal.user_id,
        user_name=principal.user_name,
        name=body.name,
        description=body.description,
        feature=feature,
        flavor=flavor.flavor_id,
        cpus=float(flavor.cpu_cores),
        memory_gb=float(flavor.memory_gb),
        image_id=body.image_id,
        volume=volume,
        endpoints=_endpoints(body.endpoints),
        extras=extras,
        token=ids.uuid4(),
        create_at=now_ms,
        update_at=now_ms,
        lease_type=kind,
        lease_duration=duration,
        lease_create_at=now_ms,
        lease_update_at=now_ms,
        lease_enable=True,
        status=CREATING,
    )
    session.add(notebook)
    session.flush()
    for category, uri, folder in storages:
        add_storage(session, notebook, category, uri, folder, "STATIC", now_ms)
    return to_wire(session, notebook, base_url)


def image_runtime(session: Session, project_id: str, workspace_id: str, image_id: str) -> images.ImageRuntime:
    """The environment an instance of ``workspace_id`` runs: a built-in image, or an ACTIVE one registered
    in the same workspace; 6797 otherwise."""
    runtime = images.runtime_of(session, project_id, image_id)
    if runtime is None or (runtime.type != "BUILD_IN" and runtime.workspace_id != workspace_id):
        raise errors.image_not_found(image_id)
    return runtime


def _has_free_instance(session: Session, principal: Principal) -> bool:
    query = exists().where(
        Notebook.project_id == principal.project_id,
        Notebook.user_id == principal.user_id,
        Notebook.feature == "DEFAULT",
    )
    return session.scalar(select(query)) or False


def add_storage(
    session: Session, notebook: Notebook, category: str, uri: str, folder: str, mount_type: str, now_ms: int
) -> NotebookStorage:
    storage = NotebookStorage(
        id=ids.uuid4(),
        instance_id=notebook.id,
        category=category,
        uri=uri,
        mount_path=WORK_MOUNT + folder + "/",
        mount_type=mount_type,
        # Mounted by the controller when the instance (re)starts, or at once when it is running.
        status="MOUNTING",
        create_at=now_ms,
    )
    session.add(storage)
    return storage


def get_notebook(session: Session, principal: Principal, notebook_id: str, *, lock: bool = False) -> Notebook:
    """The instance, if the caller may see it; 6309 otherwise (no hint that it exists elsewhere)."""
    query = select(Notebook).where(Notebook.id == notebook_id, Notebook.project_id == principal.project_id)
    if lock:
        query = query.with_for_update()
    notebook = session.scalar(query)
    if notebook is None:
        raise errors.not_found(notebook_id)
    workspace = session.get(Workspace, (notebook.project_id, notebook.workspace_id))
    if workspace is None or not can_access(session, principal, workspace):
        raise errors.not_found(notebook_id)
    if not _may_use(principal, notebook, workspace):
        raise errors.not_found(notebook_id)
    return notebook


def _may_use(principal: Principal, notebook: Notebook, workspace: Workspace) -> bool:
    """An instance is its owner's (its token opens a shell on the machine): others of the workspace see it
    only if they manage the workspace or are the main account, as ModelArts' ``list all`` is an admin view."""
    return principal.is_admin or notebook.user_id == principal.user_id or workspace.owner_id == principal.user_id


def show(session: Session, principal: Principal, notebook_id: str, base_url: str) -> dict[str, Any]:
    return to_wire(session, get_notebook(session, principal, notebook_id), base_url)


# --- list ----------------------------------------------------------------------------------------------------

_SORT_KEYS: dict[str, Any] = {
    "create_at": Notebook.create_at,
    "update_at": Notebook.update_at,
    "name": Notebook.name,
    "status": Notebook.status,
    "flavor": Notebook.flavor,
}


def list_notebooks(
    session: Session, principal: Principal, query: ListQuery, base_url: str, *, everyone: bool
) -> dict[str, Any]:
    """``GET /notebooks`` (the caller's own) and ``/notebooks/all`` (every user's, for who may see them)."""
    join = and_(Workspace.project_id == Notebook.project_id, Workspace.id == Notebook.workspace_id)
    statement = (
        select(Notebook).join(Workspace, join).where(Notebook.project_id == principal.project_id, accessible_clause())
    )
    if not everyone:
        statement = statement.where(Notebook.user_id == principal.user_id)
    elif not principal.is_admin:
        statement = statement.where(or_(Notebook.user_id == principal.user_id, Workspace.owner_id == principal.user_id))
    conditions: list[ColumnElement[bool]] = []
    feature = (query.feature or "NOTEBOOK").upper()
    if feature != "ALL":
        conditions.append(Notebook.feature == feature)
    if query.workspace_id is not None:
        require_workspace(session, principal, query.workspace_id, action="modelarts:notebook:list")
        conditions.append(Notebook.workspace_id == query.workspace_id)
    if query.status:
        statuses = [status.strip().upper() for status in query.status.split(",") if status.strip()]
        unknown = [status for status in statuses if status not in STATUSES]
        if unknown:
            raise errors.bad_value(f"status {unknown[0]!r} is not a notebook status.")
        conditions.append(Notebook.status.in_(statuses))
    for text, column in (
        (query.name, Notebook.name),
        (query.flavor, Notebook.flavor),
        (query.description, Notebook.description),
        (query.username, Notebook.user_name),
    ):
        if text:
            conditions.append(contains(column, text))
    if query.owner:
        conditions.append(Notebook.user_id == query.owner)
    if query.id:
        conditions.append(Notebook.id == query.id)
    if query.image_id:
        conditions.append(Notebook.image_id == query.image_id)
    if query.ip and query.ip != "127.0.0.1":
        conditions.append(Notebook.id.is_(None))  # every instance lives on this machine
    if query.pool_id or query.pool_name:
        conditions.append(Notebook.id.is_(None))  # no instance runs in a dedicated pool
    if query.billing and query.billing.upper() not in ("ALL", "STORAGE", "COMPUTE"):
        raise errors.bad_value(f"billing {query.billing!r}: use ALL, STORAGE or COMPUTE.")
    if query.swr_path:
        conditions.append(Notebook.image_id.in_(_images_with_swr_path(session, principal.project_id, query.swr_path)))
    for key, value in _tag_filters(query.tags):
        tag_match = [NotebookTag.instance_id == Notebook.id, NotebookTag.key == key]
        if value is not None:
            tag_match.append(NotebookTag.value == value)
        conditions.append(exists().where(*tag_match))
    statement = statement.where(*conditions)
    order = _order(query.sort_key, query.sort_dir)
    params = accessible_params(principal)
    total = session.scalar(select(func.count()).select_from(statement.subquery()), params) or 0
    rows = session.scalars(statement.order_by(*order).limit(query.limit).offset(query.offset), params).all()
    return {
        "current": query.offset // query.limit,
        "data": [to_wire(session, row, base_url) for row in rows],
        "pages": math.ceil(total / query.limit) if total else 0,
        "size": query.limit,
        "total": total,
    }


def _images_with_swr_path(session: Session, project_id: str, text: str) -> list[str]:
    used = session.scalars(select(Notebook.image_id).where(Notebook.project_id == project_id).distinct())
    matching = []
    for image_id in used:
        view = images.image_view(session, project_id, image_id) or {}
        if text.lower() in str(view.get("swr_path", "")).lower():
            matching.append(image_id)
    return matching


def _order(sort_key: str | None, sort_dir: str) -> list[Any]:
    direction = sort_dir.upper()
    if direction not in ("ASC", "DESC"):
        raise errors.bad_value(f"sort_dir {sort_dir!r}: use ASC or DESC.")
    by = asc if direction == "ASC" else desc
    keys = [key.strip() for key in (sort_key or "create_at").split(",") if key.strip()]
    columns = []
    for key in keys:
        if key not in _SORT_KEYS:
            raise errors.notebook_error(
                "6303", f"The field {key} does not support sorting; use one of {sorted(_SORT_KEYS)}."
            )
        columns.append(by(_SORT_KEYS[key]))
    return [*columns, by(Notebook.id)]


def _tag_filters(tags: str | None) -> list[tuple[str, str | None]]:
    """``k1|v1,k2|v2`` (reference C.7); a key without ``|value`` matches any value."""
    filters: list[tuple[str, str | None]] = []
    for item in (tags or "").split(","):
        if not item.strip():
            continue
        key, bar, value = item.partition("|")
        if not key.strip():
            raise errors.bad_value(f"tags {tags!r}: each filter is key|value.")
        filters.append((key.strip(), value if bar else None))
    return filters


# --- update -----------------------------------------------------------------------------------------------

ANYTIME_FIELDS = ("name", "description")


def update(
    session: Session,
    settings: Settings,
    principal: Principal,
    notebook_id: str,
    body: UpdateNotebook,
    now_ms: int,
    base_url: str,
) -> dict[str, Any]:
    notebook = get_notebook(session, principal, notebook_id, lock=True)
    given = body.model_dump(exclude_unset=True, exclude_none=True)
    if not given:
        raise errors.invalid_payload("the body changes nothing.")
    restricted = [field for field in given if field not in ANYTIME_FIELDS]
    if restricted and notebook.status not in AT_REST:
        raise errors.not_modifiable(restricted[0], notebook.status)
    if body.name is not None:
        check_name(body.name)
        notebook.name = body.name
    if body.description is not None:
        check_description(body.description)
        notebook.description = body.description
    if body.custom_spec is not None or body.flavor is not None:
        flavor = (
            _custom_flavor(body.custom_spec)
            if body.custom_spec is not None
            else _flavor(settings, body.flavor or "", notebook.feature)
        )
        if notebook.feature == "DEFAULT" and flavor.flavor_id != FREE_FLAVOR:
            raise errors.flavor_switch(f"A DEFAULT instance keeps the {FREE_FLAVOR} flavor.")
        notebook.flavor, notebook.cpus, notebook.memory_gb = (
            flavor.flavor_id,
            float(flavor.cpu_cores),
            float(flavor.memory_gb),
        )
        extras = dict(notebook.extras)
        if body.custom_spec is not None:
            extras["custom_spec"] = body.custom_spec.model_dump(exclude_none=True)
        else:
            extras.pop("custom_spec", None)
        notebook.extras = extras
    if body.image_id is not None:
        image_runtime(session, principal.project_id, notebook.workspace_id, body.image_id)
        notebook.image_id = body.image_id
    if body.storage_new_size is not None:
        current = int(notebook.volume["capacity"])
        if not current <= body.storage_new_size <= EVS_MAX_GB:
            raise errors.notebook_error(
                "6331",
                f"storage_new_size must be between the current {current} GB and {EVS_MAX_GB} GB (EVS only grows).",
            )
        notebook.volume = {**notebook.volume, "capacity": body.storage_new_size}
    if body.endpoints is not None:
        notebook.endpoints = _endpoints(body.endpoints)
    if body.data_volumes is not None:
        _replace_static_storages(session, notebook, body, now_ms)
    extras = dict(notebook.extras)
    for field in ("hooks", "affinity", "public_network_config", "dew_secret_name"):
        if field in given:
            extras[field] = given[field]
    notebook.extras = extras
    notebook.update_at = now_ms
    session.flush()
    return to_wire(session, notebook, base_url)


def _replace_static_storages(session: Session, notebook: Notebook, body: UpdateNotebook, now_ms: int) -> None:
    wanted = [check_storage(v.category, v.uri or "", v.mount_path or "") for v in body.data_volumes or []]
    for storage in session.scalars(
        select(NotebookStorage).where(
            NotebookStorage.instance_id == notebook.id, NotebookStorage.mount_type == "STATIC"
        )
    ):
        session.delete(storage)
    session.flush()
    taken = set(session.scalars(select(NotebookStorage.mount_path).where(NotebookStorage.instance_id == notebook.id)))
    for category, uri, folder in wanted:
        if WORK_MOUNT + folder + "/" in taken:
            raise errors.bad_value(f"Two volumes have the mount_path {WORK_MOUNT + folder}/.")
        taken.add(WORK_MOUNT + folder + "/")
        add_storage(session, notebook, category, uri, folder, "STATIC", now_ms)


# --- start, stop, delete --------------------------------------------------------------------------------


def _refuse_busy(notebook: Notebook) -> None:
    if notebook.status == RUNNING:
        raise errors.already_running(notebook.id)
    if notebook.status in (CREATING, STARTING):
        raise errors.is_starting(notebook.id)
    if notebook.status == STOPPING:
        raise errors.is_stopping(notebook.id)
    if notebook.status == DELETING:
        raise errors.busy(notebook.id, notebook.status)


def start(
    session: Session,
    settings: Settings,
    principal: Principal,
    notebook_id: str,
    duration: int | None,
    kind: str | None,
    now_ms: int,
    base_url: str,
) -> dict[str, Any]:
    """STOPPED (or failed) to STARTING; the lease runs ``duration`` from now (reference C.5)."""
    notebook = get_notebook(session, principal, notebook_id, lock=True)
    _refuse_busy(notebook)
    requested = lease_duration(duration)
    lease = lease_type(kind)
    image_runtime(session, principal.project_id, notebook.workspace_id, notebook.image_id)
    _require_capacity(session, settings, notebook.id, notebook.flavor, notebook.cpus, notebook.memory_gb)
    _set_lease(notebook, lease, requested, now_ms)
    notebook.status, notebook.fail_reason, notebook.stop_reason = STARTING, "", ""
    notebook.pid = notebook.process_start_time = notebook.port = notebook.stop_requested_at = None
    notebook.update_at = now_ms
    session.flush()
    return to_wire(session, notebook, base_url)


def stop(
    session: Session,
    principal: Principal,
    notebook_id: str,
    now_ms: int,
    base_url: str,
    reason: str = "stopped by the user",
) -> dict[str, Any]:
    notebook = get_notebook(session, principal, notebook_id, lock=True)
    if notebook.status in (STOPPED, CREATE_FAILED, START_FAILED, ERROR):
        raise errors.already_stopped(notebook.id)
    if notebook.status == STOPPING:
        raise errors.is_stopping(notebook.id)
    if notebook.status in (CREATING, STARTING):
        raise errors.is_starting(notebook.id)
    if notebook.status != RUNNING:
        raise errors.busy(notebook.id, notebook.status)
    request_stop(notebook, now_ms, reason)
    session.flush()
    return to_wire(session, notebook, base_url)


def request_stop(notebook: Notebook, now_ms: int, reason: str) -> None:
    notebook.status, notebook.stop_reason = STOPPING, reason
    notebook.lease_update_at = notebook.update_at = now_ms


def delete(session: Session, principal: Principal, notebook_id: str, now_ms: int, base_url: str) -> dict[str, Any]:
    notebook = get_notebook(session, principal, notebook_id, lock=True)
    if notebook.status == RUNNING:
        raise errors.stop_before_delete(notebook.id)
    if notebook.status in (CREATING, STARTING):
        raise errors.is_starting(notebook.id)
    if notebook.status == STOPPING:
        raise errors.is_stopping(notebook.id)
    if notebook.status == DELETING:
        raise errors.busy(notebook.id, notebook.status)
    notebook.status, notebook.update_at = DELETING, now_ms
    session.flush()
    return to_wire(session, notebook, base_url)


# --- leases (reference C.5) ----------------------------------------------------------------------------


def _set_lease(notebook: Notebook, kind: str, requested: int, now_ms: int) -> None:
    """TIMING: the expiry ``create_at + duration`` moves to now + requested. IDLE: ``duration`` is the idle
    time after which the instance stops, whenever that is."""
    notebook.lease_type = kind
    notebook.lease_duration = now_ms + requested - notebook.lease_create_at if kind == "TIMING" else requested
    notebook.lease_update_at = now_ms
    notebook.lease_enable = True


def lease_to_wire(notebook: Notebook) -> dict[str, Any]:
    return {
        "create_at": notebook.lease_create_at,
        "duration": notebook.lease_duration,
        "enable": notebook.lease_enable,
        "type": notebook.lease_type,
        "update_at": notebook.lease_update_at,
    }


def show_lease(session: Session, principal: Principal, notebook_id: str) -> dict[str, Any]:
    notebook = get_notebook(session, principal, notebook_id)
    if notebook.status != RUNNING:
        raise errors.not_running(notebook.id)
    return lease_to_wire(notebook)


def renew_lease(
    session: Session,
    principal: Principal,
    notebook_id: str,
    query_duration: int | None,
    body_duration: int | None,
    body_type: str | None,
    now_ms: int,
) -> dict[str, Any]:
    """The query's ``duration`` overrides the body's and forces TIMING."""
    notebook = get_notebook(session, principal, notebook_id, lock=True)
    if notebook.status != RUNNING:
        raise errors.not_running(notebook.id)
    if query_duration is not None:
        requested, kind = query_duration, "TIMING"
    else:
        if body_duration is None:
            raise errors.duration_required()
        requested, kind = body_duration, lease_type(body_type or notebook.lease_type)
    _set_lease(notebook, kind, lease_duration(requested), now_ms)
    notebook.update_at = now_ms
    session.flush()
    return lease_to_wire(notebook)


def lease_expiry_ms(notebook: Notebook) -> int | None:
    """When a TIMING lease stops the instance (None for IDLE leases or a disabled one)."""
    if not notebook.lease_enable or notebook.lease_type != "TIMING":
        return None
    return notebook.lease_create_at + notebook.lease_duration


# --- flavors -------------------------------------------------------------------------------------------


def list_flavors(
    session: Session, settings: Settings, category: str | None, feature: str | None, limit: int, offset: int
) -> dict[str, Any]:
    flavors = notebook_flavors(settings)
    if category:
        flavors = [f for f in flavors if f.flavor_type == category.upper()]
    if feature and feature.upper() in FEATURES:
        wanted = feature.upper()
        flavors = [f for f in flavors if (f.flavor_id == FREE_FLAVOR) == (wanted == "DEFAULT")]
    return _flavor_page(session, settings, flavors, limit, offset)


def switchable_flavors(
    session: Session, settings: Settings, principal: Principal, notebook_id: str, limit: int, offset: int
) -> dict[str, Any]:
    """The flavors an instance may change to: the others of its kind (a free instance has none)."""
    notebook = get_notebook(session, principal, notebook_id)
    flavors = (
        [] if notebook.feature == "DEFAULT" else [f for f in catalogue(settings) if f.flavor_id != notebook.flavor]
    )
    return _flavor_page(session, settings, flavors, limit, offset)


def _flavor_page(
    session: Session, settings: Settings, flavors: list[Flavor], limit: int, offset: int
) -> dict[str, Any]:
    data = [flavor_to_wire(f, _sold_out(session, settings, f)) for f in flavors[offset : offset + limit]]
    total = len(flavors)
    return {
        "current": offset // limit,
        "data": data,
        "flavors": data,
        "pages": math.ceil(total / limit) if total else 0,
        "size": limit,
        "total": total,
    }


# --- the wire form (reference C.3) ----------------------------------------------------------------------


def instance_url(base_url: str, notebook_id: str) -> str:
    return f"{base_url.rstrip('/')}/authoring/{notebook_id}/lab"


def storage_to_wire(storage: NotebookStorage) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "id": storage.id,
        "category": storage.category,
        "uri": storage.uri,
        "mount_path": storage.mount_path,
        "status": storage.status,
        "mount_type": storage.mount_type,
    }
    if storage.failure_reason:
        wire["failure_reason"] = storage.failure_reason
    return wire


def to_wire(session: Session, notebook: Notebook, base_url: str) -> dict[str, Any]:
    storages = session.scalars(
        select(NotebookStorage).where(NotebookStorage.instance_id == notebook.id).order_by(NotebookStorage.create_at)
    ).all()
    tags = session.scalars(select(NotebookTag).where(NotebookTag.instance_id == notebook.id).order_by(NotebookTag.key))
    url = instance_url(base_url, notebook.id)
    wire: dict[str, Any] = {
        "id": notebook.id,
        "name": notebook.name,
        "description": notebook.description,
        "feature": notebook.feature,
        "flavor": notebook.flavor,
        "status": notebook.status,
        "token": notebook.token,
        "image": images.image_view(session, notebook.project_id, notebook.image_id) or {"id": notebook.image_id},
        "lease": lease_to_wire(notebook),
        "volume": notebook.volume,
        "data_volumes": [
            {
                "category": s.category,
                "mount_path": s.mount_path,
                "url": s.uri,
                "status": s.status,
                "mount_type": s.mount_type,
            }
            for s in storages
        ],
        "endpoints": [
            {"service": e["service"], "dev_service": e["service"], "uri": url, "key_pair_names": e["key_pair_names"]}
            for e in notebook.endpoints
        ],
        "workspace_id": notebook.workspace_id,
        "user_id": notebook.user_id,
        "user": {"id": notebook.user_id, "name": notebook.user_name},
        "billing_items": ["ALL"],
        "is_need_credentials": True,
        "ip": "127.0.0.1",
        "action_progress": _progress(notebook),
        "tags": [{"key": tag.key, "value": tag.value} for tag in tags],
        "create_at": notebook.create_at,
        "update_at": notebook.update_at,
    }
    if notebook.status != CREATING:
        wire["url"] = url
    if notebook.fail_reason:
        wire["fail_reason"] = notebook.fail_reason
    if notebook.stop_reason and notebook.status in (STOPPING, STOPPED):
        wire["stop_reason"] = notebook.stop_reason
    extras = dict(notebook.extras)
    if "custom_spec" in extras:
        wire["custom_spec"] = extras.pop("custom_spec")
    wire.update(extras)
    return wire


def _progress(notebook: Notebook) -> list[dict[str, Any]]:
    """ModelArts' four start-up steps: storage, compute, network, the instance itself."""
    steps = ("storage", "compute", "network", "init instance")
    if notebook.status in (CREATING, STARTING):
        launched = notebook.pid is not None
        states = ["COMPLETED", "COMPLETED" if launched else "PROCESSING", "COMPLETED" if launched else "WAITING"]
        states.append("PROCESSING" if launched else "WAITING")
    elif notebook.status in (CREATE_FAILED, START_FAILED):
        states = ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"]
    else:
        states = ["COMPLETED"] * 4
    return [
        {"step": index + 1, "status": state, "description": f"{steps[index]}"} for index, state in enumerate(states)
    ]
