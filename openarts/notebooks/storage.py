"""Object-store folders shown in an instance's work directory: OBS data volumes given at create, and the
dynamic storage endpoints (``/notebooks/{id}/storage``).

How a folder appears (no FUSE on one machine): with the local object store the folder is a symbolic
link to the bucket's folder, so reads and writes go straight to the store, both ways, at once. With an
S3-compatible store the folder is a copy: downloaded when mounted, uploaded back when unmounted and when
the instance stops (``sync_back``). Either way the link or copy sits inside the work directory, and the
object path went through the one obs path grammar, so it never leaves its bucket.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import stat
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from openarts.core.identity.service import Principal
from openarts.notebooks import errors, service
from openarts.notebooks.folders import InstanceDir
from openarts.notebooks.schemas import PageQuery, StorageIn
from openarts.notebooks.tables import Notebook, NotebookStorage
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore

MAX_STORAGES = 10
MOUNTING, MOUNTED, UNMOUNTING, MOUNT_FAILED = "MOUNTING", "MOUNTED", "UNMOUNTING", "MOUNT_FAILED"


# --- the endpoints ---------------------------------------------------------------------------------------


def attach(session: Session, principal: Principal, notebook_id: str, body: StorageIn, now_ms: int) -> dict[str, Any]:
    notebook = service.get_notebook(session, principal, notebook_id, lock=True)
    if notebook.status == service.DELETING:
        raise errors.busy(notebook.id, notebook.status)
    category, uri, folder = service.check_storage(body.category, body.uri, body.mount_path)
    existing = session.scalars(select(NotebookStorage).where(NotebookStorage.instance_id == notebook.id)).all()
    if len(existing) >= MAX_STORAGES:
        raise errors.bad_value(f"An instance mounts at most {MAX_STORAGES} storages.")
    mount_path = service.WORK_MOUNT + folder + "/"
    if any(storage.mount_path == mount_path for storage in existing):
        raise errors.bad_value(f"Something is already mounted at {mount_path}.")
    storage = service.add_storage(session, notebook, category, uri, folder, "DYNAMIC", now_ms)
    session.flush()
    return service.storage_to_wire(storage)


def _get_storage(session: Session, notebook: Notebook, storage_id: str, *, lock: bool = False) -> NotebookStorage:
    query = select(NotebookStorage).where(NotebookStorage.id == storage_id, NotebookStorage.instance_id == notebook.id)
    if lock:
        query = query.with_for_update()
    storage = session.scalar(query)
    if storage is None:
        raise errors.notebook_error("6336", f"Storage {storage_id} is not mounted on instance {notebook.id}.")
    return storage


def show(session: Session, principal: Principal, notebook_id: str, storage_id: str) -> dict[str, Any]:
    notebook = service.get_notebook(session, principal, notebook_id)
    return service.storage_to_wire(_get_storage(session, notebook, storage_id))


def detach(session: Session, principal: Principal, notebook_id: str, storage_id: str) -> dict[str, Any]:
    notebook = service.get_notebook(session, principal, notebook_id, lock=True)
    storage = _get_storage(session, notebook, storage_id, lock=True)
    if storage.mount_type != "DYNAMIC":
        raise errors.bad_value(f"Storage {storage_id} was given at create: change data_volumes with an update.")
    if storage.status == UNMOUNTING:
        raise errors.busy(storage.id, storage.status)
    storage.status = UNMOUNTING
    session.flush()
    return service.storage_to_wire(storage)


def list_storages(session: Session, principal: Principal, notebook_id: str, query: PageQuery) -> dict[str, Any]:
    notebook = service.get_notebook(session, principal, notebook_id)
    statement = select(NotebookStorage).where(
        NotebookStorage.instance_id == notebook.id, NotebookStorage.mount_type == "DYNAMIC"
    )
    total = session.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = session.scalars(
        statement.order_by(NotebookStorage.create_at, NotebookStorage.id).limit(query.limit).offset(query.offset)
    ).all()
    return {
        "current": query.offset // query.limit,
        "data": [service.storage_to_wire(row) for row in rows],
        "pages": math.ceil(total / query.limit) if total else 0,
        "size": query.limit,
        "total": total,
    }


# --- mounting (the controller's) ----------------------------------------------------------------------------


def _target(folder: InstanceDir, storage: NotebookStorage) -> Path:
    # mount_path was checked when given (no "..", nothing outside the work folder): join, don't resolve.
    return folder.work / storage.mount_path[len(service.WORK_MOUNT) :].strip("/")


def mount(store: ObjectStore, folder: InstanceDir, storage: NotebookStorage) -> None:
    """Make the object-store folder appear at its mount path; raises what went wrong."""
    target = _target(folder, storage)
    path = parse_obs_url(storage.uri)
    if target.is_symlink() or target.exists():
        if target.is_symlink() and store.is_local and target.readlink() == store.local_path(path):
            return  # already there (a restart in the middle of mounting)
        raise FileExistsError(f"{storage.mount_path} already exists in the work directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    if store.is_local:
        source = store.local_path(path)
        source.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source, target_is_directory=True)
    else:
        target.mkdir()
        store.download(path, target)


def sync_back(store: ObjectStore, folder: InstanceDir, storage: NotebookStorage) -> None:
    """A copied folder (S3 store) goes back to the store; a linked one already is there."""
    if store.is_local:
        return
    target = _target(folder, storage)
    if target.is_dir() and not target.is_symlink():
        store.upload(target, parse_obs_url(storage.uri))


def unmount(store: ObjectStore, folder: InstanceDir, storage: NotebookStorage) -> None:
    target = _target(folder, storage)
    if target.is_symlink():
        target.unlink()
        return
    if target.is_dir():
        sync_back(store, folder, storage)
        shutil.rmtree(target)


def usage_gb(folder: InstanceDir) -> float:
    """What the work directory holds, in GB, not following the links to object-store folders."""
    total = 0
    for root, _dirs, files in os.walk(folder.work):  # does not descend into linked folders
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(root, name))
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
    return round(total / 1024**3, 3)
