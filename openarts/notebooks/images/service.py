"""Image rules: list, register, show, sync and delete images; list, update and delete image groups; and
what notebooks read from an image (:func:`runtime_of`, :func:`image_view`, :data:`IN_USE_CHECKS`).

Built-in images (``catalogue.py``) are visible to every project and run on the server's own interpreter;
they cannot be changed or deleted. Registered images (type DEDICATED) live in a workspace of one
project, and every operation on them first asks ``require_workspace`` whether the caller may work
there. Registering and syncing run the environment's interpreter (``environments.py``); routes do that
between a read and a write transaction, never while holding the database's write lock.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, asc, desc, false, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.core.sql import contains
from openarts.notebooks.images import catalogue, environments, errors, schemas
from openarts.notebooks.images.catalogue import BUILD_IN, BUILT_INS, BuiltIn
from openarts.notebooks.images.environments import EnvironmentRef, Inspection
from openarts.notebooks.images.tables import Image, ImageGroup
from openarts.workspaces.access import require_workspace
from openarts.workspaces.service import resource_holders

DEDICATED = "DEDICATED"
ACTIVE, ERROR, DELETED = "ACTIVE", "ERROR", "DELETED"
DEFAULT_DEV_SERVICES = ["NOTEBOOK", "SSH"]
DEFAULT_RESOURCE_CATEGORIES = ["CPU", "GPU"]

# The notebooks family registers here: (session, image id) -> whether some instance, in any project,
# uses the image. An image any check claims cannot be deleted.
IN_USE_CHECKS: list[Callable[[Session, str], bool]] = []

# sort_key values (ModelArts' documents spell them both ways) and the column each sorts by.
SORT_KEYS = {
    "create_at": "create_at",
    "create_time": "create_at",
    "createtime": "create_at",
    "update_at": "update_at",
    "update_time": "update_at",
    "updatetime": "update_at",
    "name": "name",
    "tag": "tag",
}
_SORT_COLUMNS = {"create_at": Image.create_at, "update_at": Image.update_at, "name": Image.name, "tag": Image.tag}


# --- what notebooks read -----------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRuntime:
    """What a notebook needs to run an image: the interpreter whose JupyterLab it starts."""

    id: str
    name: str
    tag: str
    python: str
    swr_path: str
    type: str  # BUILD_IN or DEDICATED
    workspace_id: str  # "0" for built-ins, which every workspace may use
    python_version: str
    jupyterlab_version: str
    jupyter_server_version: str
    dev_services: tuple[str, ...]  # NOTEBOOK, SSH: what an instance may offer (6768 when SSH is missing)
    resource_categories: tuple[str, ...]  # CPU, GPU, ASCEND: the flavors it suits


def _built_in_runtime(image: BuiltIn) -> ImageRuntime:
    server = catalogue.server_environment()
    return ImageRuntime(
        id=image.id,
        name=image.name,
        tag=image.tag,
        python=catalogue.server_python(),
        swr_path=image.swr_path,
        type=BUILD_IN,
        workspace_id=schemas.DEFAULT_WORKSPACE,
        python_version=server.python_version,
        jupyterlab_version=server.jupyterlab_version,
        jupyter_server_version=server.jupyter_server_version,
        dev_services=tuple(DEFAULT_DEV_SERVICES),
        resource_categories=image.resource_categories,
    )


def _row(session: Session, project_id: str, image_id: str) -> Image | None:
    return session.scalar(select(Image).where(Image.project_id == project_id, Image.id == image_id))


def runtime_of(session: Session, project_id: str, image_id: str) -> ImageRuntime | None:
    """The runtime of a built-in image or of this project's registered ACTIVE image; None otherwise.

    It checks no workspace: the notebook that names the image does that with ``workspace_id``.
    """
    image = catalogue.built_in(image_id)
    if image is not None:
        return _built_in_runtime(image)
    row = _row(session, project_id, image_id)
    if row is None or row.status != ACTIVE:
        return None
    return ImageRuntime(
        id=row.id,
        name=row.name,
        tag=row.tag,
        python=row.python,
        swr_path=row.swr_path,
        type=DEDICATED,
        workspace_id=row.workspace_id,
        python_version=row.python_version,
        jupyterlab_version=row.jupyterlab_version,
        jupyter_server_version=row.jupyter_server_version,
        dev_services=tuple(row.dev_services),
        resource_categories=tuple(row.resource_categories),
    )


def image_view(session: Session, project_id: str, image_id: str) -> dict[str, Any] | None:
    """The image as a notebook response shows it (its ``image`` object), whatever its status."""
    image = catalogue.built_in(image_id)
    if image is not None:
        return built_in_to_wire(image)
    row = _row(session, project_id, image_id)
    if row is None:
        return None
    return to_wire(row, _group_tags(session, row.group_id))


def _count_in_workspace(session: Session, project_id: str, workspace_id: str) -> int:
    query = select(func.count()).where(Image.project_id == project_id, Image.workspace_id == workspace_id)
    return session.scalar(query) or 0


resource_holders["notebook images"] = _count_in_workspace


# --- the wire shape ----------------------------------------------------------------------------


def _without_none(wire: dict[str, Any]) -> dict[str, Any]:
    # ModelArts leaves out what an image does not have; the SDK reads a missing key as None.
    return {key: value for key, value in wire.items() if value is not None}


def built_in_to_wire(image: BuiltIn) -> dict[str, Any]:
    categories = list(image.resource_categories)
    return {
        "id": image.id,
        "name": image.name,
        "namespace": catalogue.NAMESPACE,
        "tag": image.tag,
        "swr_path": image.swr_path,
        "type": BUILD_IN,
        "arch": catalogue.machine_arch(),
        "service_type": image.service_type,
        "status": ACTIVE,
        "status_message": "",
        "visibility": "PUBLIC",
        "dev_services": list(DEFAULT_DEV_SERVICES),
        "resource_categories": categories,
        "support_res_categories": list(categories),
        "description": image.description,
        "workspace_id": schemas.DEFAULT_WORKSPACE,
        "show_name": image.name,
        "show_tag": image.tag,
        "create_at": catalogue.PUBLISHED_AT_MS,
        "update_at": catalogue.PUBLISHED_AT_MS,
        "tags": [],
    }


def to_wire(image: Image, tags: list[dict[str, Any]]) -> dict[str, Any]:
    """ImageResponse: what register, show, sync, delete and each list item answer."""
    return _without_none(
        {
            "id": image.id,
            "name": image.name,
            "namespace": image.namespace,
            "tag": image.tag,
            "swr_path": image.swr_path,
            "type": DEDICATED,
            "arch": image.arch,
            "origin": image.origin,
            "service_type": image.service_type,
            "status": image.status,
            "status_message": image.status_message,
            "visibility": image.visibility,
            "dev_services": list(image.dev_services),
            "resource_categories": list(image.resource_categories),
            "support_res_categories": list(image.resource_categories),
            "flavor_type": image.flavor_type,
            "description": image.description,
            "workspace_id": image.workspace_id,
            "create_at": image.create_at,
            "update_at": image.update_at,
            "tags": [dict(tag) for tag in tags],
        }
    )


def built_in_group_to_wire(image: BuiltIn) -> dict[str, Any]:
    return {
        "id": image.group_id,
        "name": image.name,
        "namespace": catalogue.NAMESPACE,
        "type": BUILD_IN,
        "workspace_id": schemas.DEFAULT_WORKSPACE,
        "version_count": 1,
        "description": image.description,
        "read_me": "",
        "tags": [],
        "create_at": catalogue.PUBLISHED_AT_MS,
        "update_at": catalogue.PUBLISHED_AT_MS,
    }


def group_to_wire(group: ImageGroup, version_count: int) -> dict[str, Any]:
    """ImageGroup, plus its ``type``, ``workspace_id`` and ``tags`` (extra keys the SDK ignores)."""
    return {
        "id": group.id,
        "name": group.name,
        "namespace": group.namespace,
        "type": DEDICATED,
        "workspace_id": group.workspace_id,
        "version_count": version_count,
        "description": group.description,
        "read_me": group.read_me,
        "tags": [dict(tag) for tag in group.tags],
        "create_at": group.create_at,
        "update_at": group.update_at,
    }


def _page(data: list[dict[str, Any]], total: int, limit: int, offset: int) -> dict[str, Any]:
    # ``current`` counts pages from 1 (the group list example answers current 1 for its only page).
    return {
        "current": offset // limit + 1,
        "data": data,
        "pages": math.ceil(total / limit),
        "size": limit,
        "total": total,
    }


# --- finding images and groups -----------------------------------------------------------------


def _group_tags(session: Session, group_id: str) -> list[dict[str, Any]]:
    tags = session.scalar(select(ImageGroup.tags).where(ImageGroup.id == group_id))
    return list(tags or [])


def _require_image(session: Session, principal: Principal, image_id: str, action: str) -> Image:
    """A registered image of the caller's project: 6797 if unknown (also in other projects), 403 if the
    caller may not work in its workspace."""
    image = _row(session, principal.project_id, image_id)
    if image is None:
        raise errors.image_not_found(image_id)
    require_workspace(session, principal, image.workspace_id, action=action)
    return image


def _require_group(session: Session, principal: Principal, group_id: str, action: str) -> ImageGroup:
    group = session.scalar(
        select(ImageGroup).where(ImageGroup.project_id == principal.project_id, ImageGroup.id == group_id)
    )
    if group is None:
        raise errors.group_not_found(group_id)
    require_workspace(session, principal, group.workspace_id, action=action)
    return group


def _version_count(session: Session, group_id: str) -> int:
    return session.scalar(select(func.count()).where(Image.group_id == group_id)) or 0


def _in_use(session: Session, image_id: str) -> bool:
    return any(check(session, image_id) for check in IN_USE_CHECKS)


# --- show and list -----------------------------------------------------------------------------


def show(session: Session, principal: Principal, image_id: str) -> dict[str, Any]:
    image = catalogue.built_in(image_id)
    if image is not None:
        return built_in_to_wire(image)
    row = _require_image(session, principal, image_id, "modelarts:image:get")
    return to_wire(row, _group_tags(session, row.group_id))


def _sort_fields(sort_key: str | None) -> list[str]:
    if not sort_key or not sort_key.strip():
        return ["create_at"]
    fields: list[str] = []
    for raw in sort_key.split(","):
        key = raw.strip()
        field = SORT_KEYS.get(key.lower())
        if field is None:
            raise errors.unsupported_sort(key or "''")
        if field not in fields:
            fields.append(field)
    return fields


def _name_matches(name: str, wanted: str | None, fuzzy: bool) -> bool:
    if wanted is None or wanted == "":
        return True
    return wanted.lower() in name.lower() if fuzzy else name == wanted


def _name_condition(column: Any, wanted: str, fuzzy: bool) -> ColumnElement[bool]:
    if fuzzy:
        return contains(column, wanted)
    condition: ColumnElement[bool] = column == wanted
    return condition


def _built_in_matches(image: BuiltIn, query: schemas.ListImagesQuery) -> bool:
    return (
        _name_matches(image.name, query.name, query.name_fuzzy_match)
        and query.namespace in (None, "", catalogue.NAMESPACE)
        and query.service_type in (None, image.service_type)
        and query.show_name in (None, image.name)
        and query.show_tag in (None, image.tag)
    )


def _list_built_ins(query: schemas.ListImagesQuery, fields: list[str]) -> dict[str, Any]:
    wires = [built_in_to_wire(image) for image in BUILT_INS if _built_in_matches(image, query)]
    # Stable sorts, least significant key first; the id breaks ties as it does in SQL.
    # Every sort key is the same direction, so one tuple key (the id last, as in SQL) sorts them all.
    wires.sort(key=lambda wire: tuple(wire[field] for field in [*fields, "id"]), reverse=query.sort_dir == "DESC")
    page = wires[query.offset : query.offset + query.limit]
    return _page(page, len(wires), query.limit, query.offset)


def _list_registered(
    session: Session, principal: Principal, query: schemas.ListImagesQuery, fields: list[str]
) -> dict[str, Any]:
    conditions: list[ColumnElement[bool]] = [
        Image.project_id == principal.project_id,
        Image.workspace_id == query.workspace_id,
    ]
    if query.name:
        conditions.append(_name_condition(Image.name, query.name, query.name_fuzzy_match))
    if query.namespace:
        conditions.append(Image.namespace == query.namespace)
    if query.service_type is not None:
        conditions.append(Image.service_type == query.service_type)
    if query.show_name is not None or query.show_tag is not None:
        conditions.append(false())  # only built-in images have display names and tags
    total = session.scalar(select(func.count()).select_from(Image).where(*conditions)) or 0
    direction = asc if query.sort_dir == "ASC" else desc
    order = [direction(_SORT_COLUMNS[field]) for field in fields] + [direction(Image.id)]
    page = session.execute(
        select(Image, ImageGroup.tags)
        .join(ImageGroup, ImageGroup.id == Image.group_id)
        .where(*conditions)
        .order_by(*order)
        .limit(query.limit)
        .offset(query.offset)
    ).all()
    return _page([to_wire(image, tags) for image, tags in page], total, query.limit, query.offset)


def list_images(session: Session, principal: Principal, query: schemas.ListImagesQuery) -> dict[str, Any]:
    """One kind per call, as ModelArts lists them: the built-in images unless ``type`` is DEDICATED."""
    require_workspace(session, principal, query.workspace_id, action="modelarts:image:list")
    fields = _sort_fields(query.sort_key)
    if query.type == BUILD_IN:
        return _list_built_ins(query, fields)
    return _list_registered(session, principal, query, fields)


def list_groups(session: Session, principal: Principal, query: schemas.ListGroupsQuery) -> dict[str, Any]:
    """Built-in groups first (by name), then the workspace's groups, newest change first."""
    require_workspace(session, principal, query.workspace_id, action="modelarts:image:listGroup")
    if query.swr_instance_id:
        return _page([], 0, query.limit, query.offset)  # no enterprise SWR instance exists here
    built_ins: list[dict[str, Any]] = []
    if query.type in (None, BUILD_IN):
        built_ins = sorted(
            (
                built_in_group_to_wire(image)
                for image in BUILT_INS
                if _name_matches(image.name, query.name, query.name_fuzzy_match)
                and query.namespace in (None, "", catalogue.NAMESPACE)
            ),
            key=lambda wire: str(wire["name"]),
        )
    data = built_ins[query.offset : query.offset + query.limit]
    total = len(built_ins)
    if query.type in (None, DEDICATED):
        matching = select(ImageGroup).where(
            ImageGroup.project_id == principal.project_id, ImageGroup.workspace_id == query.workspace_id
        )
        if query.name:
            matching = matching.where(_name_condition(ImageGroup.name, query.name, query.name_fuzzy_match))
        if query.namespace:
            matching = matching.where(ImageGroup.namespace == query.namespace)
        total += session.scalar(select(func.count()).select_from(matching.subquery())) or 0
        wanted = query.limit - len(data)
        if wanted > 0:
            versions = select(func.count()).where(Image.group_id == ImageGroup.id).scalar_subquery()
            rows = session.execute(
                matching.add_columns(versions)
                .order_by(desc(ImageGroup.update_at), desc(ImageGroup.id))
                .limit(wanted)
                .offset(max(0, query.offset - len(built_ins)))
            ).all()
            data += [group_to_wire(group, count) for group, count in rows]
    return _page(data, total, query.limit, query.offset)


# --- register ------------------------------------------------------------------------------------


def _tags(entries: list[str | schemas.Tag] | None) -> list[dict[str, Any]]:
    """Tags as stored: [{key, value}], one per key (the last one given wins)."""
    by_key: dict[str, str] = {}
    for entry in entries or []:
        if isinstance(entry, schemas.Tag):
            key, value = entry.key, entry.value
        else:
            key, _, value = entry.partition("=")
        key = key.strip()
        if not key or len(key) > 128 or len(value) > 255:
            raise errors.bad_value(f"tag {entry!r}: the key takes 1 to 128 characters, the value up to 255.")
        by_key[key] = value
    return [{"key": key, "value": value} for key, value in by_key.items()]


def _check_name_free(session: Session, principal: Principal, workspace_id: str, ref: EnvironmentRef) -> None:
    clash = session.scalar(
        select(Image.id)
        .join(ImageGroup, ImageGroup.id == Image.group_id)
        .where(
            ImageGroup.project_id == principal.project_id,
            ImageGroup.workspace_id == workspace_id,
            ImageGroup.namespace == ref.namespace,
            ImageGroup.name == ref.name,
            Image.tag == ref.tag,
        )
    )
    if clash is not None:
        raise errors.bad_value(
            f"{ref.namespace}/{ref.name}:{ref.tag} is already registered in workspace {workspace_id} as image "
            f"{clash}; give another tag (swr_path <path>:<tag>) or delete that image first."
        )


def _flush_or_clash(session: Session, ref: EnvironmentRef) -> None:
    try:
        session.flush()
    except IntegrityError:  # a concurrent registration took the group or the tag since the check
        raise errors.bad_value(
            f"{ref.namespace}/{ref.name}:{ref.tag} was being registered at the same time; try again."
        ) from None


def check_registration(session: Session, principal: Principal, body: schemas.RegisterImage) -> EnvironmentRef:
    """Everything about a registration that needs no environment check: run before it, so a caller who
    may not register there never gets an interpreter started on their behalf."""
    if body.swr_path is None:
        raise errors.missing("swr_path")
    if body.swr_instance_id:
        raise errors.bad_value("swr_instance_id: enterprise SWR instances do not exist on OpenArts.")
    _tags(body.tags)
    ref = environments.parse_swr_path(body.swr_path)
    require_workspace(session, principal, body.workspace_id, action="modelarts:image:register")
    _check_name_free(session, principal, body.workspace_id, ref)
    return ref


def inspect_registration(body: schemas.RegisterImage, ref: EnvironmentRef) -> Inspection:
    """Run the environment's interpreter; a 400 saying why when it cannot serve notebooks."""
    inspection = environments.inspect(ref.location)
    if not inspection.ok:
        raise environments.refused(ref, inspection)
    found = catalogue.machine_arch(inspection.machine)
    if body.arch is not None and body.arch != found:
        raise errors.bad_value(f"arch is {body.arch}, but the environment at {ref.location} runs on {found}.")
    return inspection


def register(
    session: Session,
    principal: Principal,
    body: schemas.RegisterImage,
    ref: EnvironmentRef,
    inspection: Inspection,
    now_ms: int,
) -> dict[str, Any]:
    require_workspace(session, principal, body.workspace_id, action="modelarts:image:register")
    _check_name_free(session, principal, body.workspace_id, ref)
    tags = _tags(body.tags)
    group = session.scalar(
        select(ImageGroup).where(
            ImageGroup.project_id == principal.project_id,
            ImageGroup.workspace_id == body.workspace_id,
            ImageGroup.namespace == ref.namespace,
            ImageGroup.name == ref.name,
        )
    )
    if group is None:
        group = ImageGroup(
            id=ids.uuid4(),
            project_id=principal.project_id,
            workspace_id=body.workspace_id,
            namespace=ref.namespace,
            name=ref.name,
            description=body.description,
            read_me=body.read_me or "",
            tags=tags,
            create_at=now_ms,
            update_at=now_ms,
        )
        session.add(group)
        _flush_or_clash(session, ref)  # the image row refers to it: the group goes in first
    else:
        # Tags and the guide belong to the group: a new version given them updates the group.
        if body.tags is not None:
            group.tags = tags
        if body.read_me is not None:
            group.read_me = body.read_me
        group.update_at = now_ms
    image = Image(
        id=ids.uuid4(),
        project_id=principal.project_id,
        workspace_id=body.workspace_id,
        group_id=group.id,
        name=ref.name,
        namespace=ref.namespace,
        tag=ref.tag,
        swr_path=ref.swr_path,
        location=ref.location,
        python=inspection.python,
        python_version=inspection.python_version,
        jupyterlab_version=inspection.jupyterlab_version,
        jupyter_server_version=inspection.jupyter_server_version,
        arch=body.arch or catalogue.machine_arch(inspection.machine),
        origin=body.origin,
        service_type=body.service_type,
        visibility=body.visibility,
        flavor_type=body.flavor_type,
        dev_services=list(dict.fromkeys(body.services or DEFAULT_DEV_SERVICES)),
        resource_categories=list(dict.fromkeys(body.resource_category or DEFAULT_RESOURCE_CATEGORIES)),
        description=body.description,
        status=ACTIVE,
        status_message="",
        user_id=principal.user_id,
        user_name=principal.user_name,
        create_at=now_ms,
        update_at=now_ms,
    )
    session.add(image)
    _flush_or_clash(session, ref)
    return to_wire(image, group.tags)


# --- sync ----------------------------------------------------------------------------------------


def sync_target(session: Session, principal: Principal, image_id: str) -> str | dict[str, Any]:
    """Where to check a registered image's environment; for a built-in image, its answer already (it is
    the server's own environment, which is running)."""
    image = catalogue.built_in(image_id)
    if image is not None:
        return built_in_to_wire(image)
    return _require_image(session, principal, image_id, "modelarts:image:sync").location


def record_sync(
    session: Session, principal: Principal, image_id: str, inspection: Inspection, now_ms: int
) -> dict[str, Any]:
    """ACTIVE when the environment still runs JupyterLab, else ERROR with the reason in status_message."""
    image = _require_image(session, principal, image_id, "modelarts:image:sync")
    if inspection.ok:
        image.status, image.status_message = ACTIVE, ""
        image.python = inspection.python
        image.python_version = inspection.python_version
        image.jupyterlab_version = inspection.jupyterlab_version
        image.jupyter_server_version = inspection.jupyter_server_version
    else:
        image.status, image.status_message = ERROR, inspection.reason
    image.update_at = now_ms
    session.flush()
    return to_wire(image, _group_tags(session, image.group_id))


# --- delete and update -----------------------------------------------------------------------------


def delete_image(session: Session, principal: Principal, image_id: str) -> dict[str, Any]:
    """The image leaves the catalogue; its environment stays on disk (``is_force`` deletes nothing)."""
    built = catalogue.built_in(image_id)
    if built is not None:
        raise errors.built_in_refused(f"Image {image_id}", "deleted")
    image = _require_image(session, principal, image_id, "modelarts:image:delete")
    if _in_use(session, image.id):
        raise errors.image_in_use(image.id)
    tags = _group_tags(session, image.group_id)
    wire = to_wire(image, tags)
    group = session.get_one(ImageGroup, image.group_id)
    session.delete(image)
    session.flush()
    if _version_count(session, group.id) == 0:
        session.delete(group)  # a group is its versions: the last one takes it along
        session.flush()
    wire["status"] = DELETED
    return wire


def delete_group(session: Session, principal: Principal, group_id: str) -> dict[str, Any]:
    """Every version goes, or none does: one in use refuses the whole group."""
    if catalogue.built_in_group(group_id) is not None:
        raise errors.built_in_refused(f"Image group {group_id}", "deleted")
    group = _require_group(session, principal, group_id, "modelarts:image:deleteGroup")
    images = list(session.scalars(select(Image).where(Image.group_id == group.id)))
    for image in images:
        if _in_use(session, image.id):
            raise errors.image_in_use(image.id)
    wire = group_to_wire(group, len(images))
    for image in images:
        session.delete(image)
    session.flush()
    session.delete(group)
    session.flush()
    return wire


def update_group(
    session: Session, principal: Principal, group_id: str, body: schemas.UpdateGroup, now_ms: int
) -> dict[str, Any]:
    if catalogue.built_in_group(group_id) is not None:
        raise errors.built_in_refused(f"Image group {group_id}", "changed")
    group = _require_group(session, principal, group_id, "modelarts:image:updateGroup")
    if body.read_me is not None:
        group.read_me = body.read_me
    if body.tags is not None:
        group.tags = _tags(list(body.tags))
    group.update_at = now_ms
    session.flush()
    return group_to_wire(group, _version_count(session, group.id))
