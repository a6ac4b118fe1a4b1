"""Workspace quotas: the catalogue, real usage, and the one check every family calls before it
creates something.

``-1`` means unlimited. A resource nobody has changed takes its catalogue default, and its
``update_time`` is the workspace's creation time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from openarts.core import errors
from openarts.core.identity.service import Principal
from openarts.workspaces.access import require_workspace
from openarts.workspaces.tables import Workspace, WorkspaceQuota

UNLIMITED = -1


@dataclass(frozen=True)
class QuotaSpec:
    resource: str
    name_en: str
    name_cn: str
    unit_en: str
    unit_cn: str
    min_quota: int = UNLIMITED
    max_quota: int = 60000
    default: int = UNLIMITED


# (session, project_id, workspace_id) -> how much of the resource the workspace uses now.
UsageCounter = Callable[[Session, str, str], int]

CATALOGUE: dict[str, QuotaSpec] = {}
_usage: dict[str, UsageCounter] = {}


def register_resource(spec: QuotaSpec, usage: UsageCounter | None = None) -> None:
    """Add a metered resource; the family that owns it passes the function that counts it."""
    CATALOGUE[spec.resource] = spec
    if usage is not None:
        _usage[spec.resource] = usage


def register_usage(resource: str, usage: UsageCounter) -> None:
    if resource not in CATALOGUE:
        raise KeyError(f"unknown quota resource {resource}")
    _usage[resource] = usage


for _spec in (
    QuotaSpec(
        "exemlProject.gpu_duration",
        "ExeML training duration (image classification, object detection, and sound classification)",
        "自动学习(图像分类、物体检测、声音分类)训练时长",
        "minute",
        "分钟",
    ),
    QuotaSpec("trainJob.num", "Training jobs", "训练作业数", "job", "个", max_quota=100000),
    QuotaSpec("trainJob.concurrent_num", "Concurrent training jobs", "并发训练作业数", "job", "个", max_quota=1000),
    QuotaSpec("trainJob.duration", "Training duration", "训练时长", "minute", "分钟", max_quota=10_000_000),
    QuotaSpec("notebook.num", "Notebook instances", "Notebook实例数", "instance", "个", max_quota=1000),
    QuotaSpec("workflow.num", "Workflows", "工作流数", "workflow", "个", max_quota=10000),
):
    register_resource(_spec)


def usage(session: Session, project_id: str, workspace_id: str, resource: str) -> int:
    counter = _usage.get(resource)
    return counter(session, project_id, workspace_id) if counter else 0


def _stored(session: Session, workspace: Workspace) -> dict[str, WorkspaceQuota]:
    rows = session.scalars(
        select(WorkspaceQuota).where(
            WorkspaceQuota.project_id == workspace.project_id, WorkspaceQuota.workspace_id == workspace.id
        )
    )
    return {row.resource: row for row in rows}


def _entry(spec: QuotaSpec, quota: int, update_time: int) -> dict[str, Any]:
    return {
        "resource": spec.resource,
        "quota": quota,
        "min_quota": spec.min_quota,
        "max_quota": spec.max_quota,
        "name_cn": spec.name_cn,
        "name_en": spec.name_en,
        "unit_cn": spec.unit_cn,
        "unit_en": spec.unit_en,
        "update_time": update_time,
    }


def list_quotas(session: Session, workspace: Workspace) -> list[dict[str, Any]]:
    stored = _stored(session, workspace)
    result = []
    for spec in CATALOGUE.values():
        row = stored.get(spec.resource)
        quota = row.quota if row else spec.default
        entry = _entry(spec, quota, row.update_time if row else workspace.create_time)
        entry["used_quota"] = (
            None if quota == UNLIMITED else usage(session, workspace.project_id, workspace.id, spec.resource)
        )
        result.append(entry)
    return result


def update_quotas(
    session: Session, workspace: Workspace, changes: list[tuple[str, int]], now_ms: int
) -> list[dict[str, Any]]:
    """Validate every change first, then apply them all: a bad entry changes nothing."""
    seen: set[str] = set()
    for resource, quota in changes:
        spec = CATALOGUE.get(resource)
        if spec is None:
            raise errors.invalid_argument(f"Invalid Argument: unknown quota resource '{resource}'.")
        if resource in seen:
            raise errors.invalid_argument(f"Invalid Argument: quota resource '{resource}' is given twice.")
        seen.add(resource)
        if quota != UNLIMITED and quota < 1:
            raise errors.invalid_argument(
                f"Invalid Argument: quota of '{resource}' must be a positive integer or -1 (unlimited), got {quota}."
            )
        if not spec.min_quota <= quota <= spec.max_quota:
            raise errors.invalid_argument(
                f"Invalid Argument: quota of '{resource}' must lie within "
                f"[{spec.min_quota}, {spec.max_quota}], got {quota}."
            )
    stored = _stored(session, workspace)
    updated = []
    for resource, quota in changes:
        row = stored.get(resource)
        if row is None:
            row = WorkspaceQuota(project_id=workspace.project_id, workspace_id=workspace.id, resource=resource)
            session.add(row)
        row.quota = quota
        row.update_time = now_ms
        updated.append(_entry(CATALOGUE[resource], quota, now_ms))
    return updated


def check_quota(session: Session, principal: Principal, workspace_id: str, resource: str, amount: int = 1) -> None:
    """Refuse (400 ``ModelArts.0118``) a create that would take ``resource`` over its quota.

    Call it inside the write transaction that creates the resource, so the check and the create are
    one atomic step.
    """
    workspace = require_workspace(session, principal, workspace_id, action=f"use {resource}", lock=True)
    row = session.get(WorkspaceQuota, (workspace.project_id, workspace.id, resource))
    quota = row.quota if row else CATALOGUE[resource].default
    if quota == UNLIMITED:
        return
    used = usage(session, workspace.project_id, workspace.id, resource)
    if used + amount > quota:
        raise errors.quota_insufficient(resource, quota, used, amount)
