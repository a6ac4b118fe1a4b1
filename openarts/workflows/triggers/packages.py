"""Service packages of paid workflows (reference D.7) and the service auth that answers from them.

A package is bought for a workflow (the seed's body: a pool, an order whose SKU says how many runs a
period allows). Each execution of the workflow consumes one run of an available package; when every
package of the workflow with ``limit_enable`` has used its ``consume_limit`` for the current period, new
executions are refused with a clear error. A workflow without packages runs freely. ``current_consume``
counts per period: ``day`` and ``month`` start again when the period changes; any other period counts
for the package's whole life.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, StrictBool, StrictFloat, StrictInt, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.workflows.errors import invalid
from openarts.workflows.executions import BEFORE_EXECUTION_HOOKS
from openarts.workflows.service import get_workflow
from openarts.workflows.tables import Workflow
from openarts.workflows.times import rfc3339
from openarts.workflows.triggers.tables import ServicePackage

AVAILABLE = "available"


class SkuIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: StrictStr | None = None
    period: StrictStr | None = None
    queries_limit: StrictInt | None = None
    price: StrictFloat | StrictInt | None = None


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr | None = None
    sku: SkuIn
    sku_count: StrictStr | StrictInt


class PackageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # server-filled fields the SDK may echo

    pool_id: StrictStr
    order: OrderIn
    service_id: StrictStr | None = None
    workflow_id: StrictStr | None = None
    status: StrictStr | None = None
    consume_limit: StrictInt | None = None
    limit_enable: StrictBool | None = None


class ConsumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    period: StrictStr | None = None
    value: StrictInt = 1


class ServiceAuthIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    main_service_id: StrictStr
    content_id: StrictStr | None = None
    consume: ConsumeIn | None = None


def _sku_count(order: OrderIn) -> int:
    try:
        count = int(order.sku_count)
    except ValueError:
        raise invalid(f"order.sku_count {order.sku_count!r} is not a whole number.") from None
    if count < 1:
        raise invalid("order.sku_count must be at least 1.")
    return count


def _period_key(period: str | None, now_ms: int) -> str:
    moment = datetime.fromtimestamp(now_ms / 1000).astimezone()
    if period == "day":
        return moment.strftime("%Y-%m-%d")
    if period == "month":
        return moment.strftime("%Y-%m")
    return "all"


def to_wire(package: ServicePackage) -> dict[str, Any]:
    wire: dict[str, Any] = {
        "created_at": rfc3339(package.created_at),
        "package_id": package.id,
        "status": package.status,
        "pool_id": package.pool_id,
        "workflow_id": package.workflow_id,
        "order": package.order,
        "consume_limit": package.consume_limit,
        "current_consume": package.current_consume,
        "limit_enable": package.limit_enable,
    }
    if package.service_id:
        wire["service_id"] = package.service_id
    if package.current_date:
        wire["current_date"] = package.current_date
    return wire


def create(session: Session, principal: Principal, workflow_id: str, body: PackageIn, now_ms: int) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    if body.workflow_id not in (None, workflow_id):
        raise invalid(f"workflow_id {body.workflow_id!r} differs from the workflow in the path.")
    if not body.pool_id.strip():
        raise invalid("pool_id is required.")
    count = _sku_count(body.order)
    queries = body.order.sku.queries_limit
    if queries is not None and queries < 1:
        raise invalid("order.sku.queries_limit must be at least 1.")
    limit = body.consume_limit if body.consume_limit is not None else (queries or 0) * count
    if limit < 1:
        raise invalid("consume_limit (or order.sku.queries_limit) must be at least 1.")
    package = ServicePackage(
        id=ids.uuid4(),
        workflow_id=workflow.id,
        pool_id=body.pool_id,
        service_id=body.service_id,
        order=body.order.model_dump(exclude_none=True),
        status=AVAILABLE,
        consume_limit=limit,
        current_consume=0,
        current_date="",
        limit_enable=True if body.limit_enable is None else body.limit_enable,
        created_at=now_ms,
    )
    session.add(package)
    session.flush()
    return to_wire(package)


def _remaining(package: ServicePackage, now_ms: int) -> int:
    key = _period_key(package.order.get("sku", {}).get("period"), now_ms)
    used = package.current_consume if package.current_date in ("", key) else 0
    return package.consume_limit - used


def _consume(package: ServicePackage, amount: int, now_ms: int) -> None:
    key = _period_key(package.order.get("sku", {}).get("period"), now_ms)
    if package.current_date != key:
        package.current_date, package.current_consume = key, 0
    package.current_consume += amount


def _consume_a_run(session: Session, workflow: Workflow, now_ms: int) -> None:
    """Each execution of a workflow with packages uses one run of the first package that has one left."""
    packages = session.scalars(
        select(ServicePackage)
        .where(ServicePackage.workflow_id == workflow.id, ServicePackage.status == AVAILABLE)
        .order_by(ServicePackage.created_at, ServicePackage.id)
        .with_for_update()
    ).all()
    if not packages:
        return
    for package in packages:
        if not package.limit_enable or _remaining(package, now_ms) > 0:
            _consume(package, 1, now_ms)
            return
    limits = ", ".join(f"{p.id}: {p.current_consume}/{p.consume_limit}" for p in packages)
    raise ApiError(
        400,
        "ModelArts.0104",
        f"Parameter error: the service packages of workflow {workflow.id} have used every run they allow this "
        f"period ({limits}); buy another package or wait for the next period.",
    )


BEFORE_EXECUTION_HOOKS.append(_consume_a_run)


def service_auth(session: Session, principal: Principal, body: ServiceAuthIn, now_ms: int) -> dict[str, Any]:
    """Whether the packages bought for ``main_service_id`` (for workflow ``content_id`` when given) allow
    ``consume.value`` more runs now: ``{"result": "true"}`` or ``"false"``. It checks; it consumes nothing."""
    query = select(ServicePackage).where(
        ServicePackage.service_id == body.main_service_id, ServicePackage.status == AVAILABLE
    )
    if body.content_id:
        query = query.where(ServicePackage.workflow_id == body.content_id)
    wanted = body.consume.value if body.consume else 1
    if wanted < 1:
        raise invalid("consume.value must be at least 1.")
    allowed = False
    for package in session.scalars(query):
        try:
            get_workflow(session, principal, package.workflow_id)  # packages of workflows the caller may see
        except ApiError:
            continue
        if not package.limit_enable or _remaining(package, now_ms) >= wanted:
            allowed = True
            break
    return {"result": "true" if allowed else "false"}
