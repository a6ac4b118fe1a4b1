"""The inference gateway: ``POST /v1/infers/{service_id}[/path]`` on the OpenArts port (reference 5).

Authenticated like every route (IAM token or AK/SK signature). The service must be running in a
workspace the caller may use; the call goes to one of its models by ``weight`` and to that model's
instances in turn (``routing.py``, no database read on this path), and the model's answer comes back as
it is: its status, its JSON (a model's own 400 included). Gateway failures use ModelArts' envelope:

- 404 ``ModelArts.3502``: no such service (or not the caller's); 400 ``ModelArts.4203``: not running;
- 400 ``ModelArts.4202``: empty body; 413 ``APIGW.0201``: body over the server's cap;
- 503 ``ModelArts.4302``: no instance accepts the connection (a call is tried on a second instance
  first, since it never reached the first); 500 ``ModelArts.4503``: the instance broke off the exchange
  (it crashed mid-call: the controller restarts it); 504 ``ModelArts.4503``: no answer within 40 s.

Every call counts in ``invocation_times``; calls that end in a status >= 400 also in ``failed_times``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from openarts.core.auth import authenticate, principal_of
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.core.services import Services, services_of
from openarts.services import errors, upstream
from openarts.services.controller import serving_routes
from openarts.services.routing import TABLE, Route
from openarts.services.tables import Service
from openarts.workspaces.access import can_access
from openarts.workspaces.tables import Workspace

TIMEOUT_S = 40.0  # ModelArts' gateway timeout per call
ACCESS_TTL_S = 5.0  # how long a "may use this workspace" answer is reused on the hot path


_pool = upstream.Pool()
_access: dict[tuple[str, str, str], tuple[bool, float]] = {}


@asynccontextmanager
async def _close_pool(_app: FastAPI) -> AsyncIterator[None]:
    try:
        yield
    finally:
        _pool.close()


router = APIRouter(prefix="/v1/infers", dependencies=[Depends(authenticate)], tags=["inference"], lifespan=_close_pool)


def _may_use(services: Services, principal: Principal, project_id: str, workspace_id: str) -> bool:
    with services.db.read() as session:
        workspace = session.get(Workspace, (project_id, workspace_id))
        return workspace is not None and can_access(session, principal, workspace)


def _route_or_why_not(services: Services, principal: Principal, service_id: str) -> Route | ApiError:
    """For a service this server's table does not route: its route from the rows when the row is serving
    (the table follows the rows a pass later, and a call right after ``running`` must not be refused),
    else why not: unknown (404) or not running (4203)."""
    with services.db.read() as session:
        row = session.get(Service, service_id)
        if row is None or row.project_id != principal.project_id or row.status == "deleting":
            return errors.not_found(service_id)
        workspace = session.get(Workspace, (row.project_id, row.workspace_id))
        if workspace is None or not can_access(session, principal, workspace):
            return errors.not_found(service_id)
        found = serving_routes(session, [service_id])
    if found:
        TABLE.put(found[0])
        return found[0]
    return errors.unavailable(service_id)


async def _admit(request: Request, service_id: str) -> None:
    principal = principal_of(request)
    route = TABLE.get(service_id)
    services = services_of(request)
    if route is None or route.project_id != principal.project_id:
        found = await run_in_threadpool(_route_or_why_not, services, principal, service_id)
        if isinstance(found, ApiError):
            raise found
        route = found
    key = (principal.user_id, route.project_id, route.workspace_id)
    cached = _access.get(key)
    now = time.monotonic()
    if cached is None or now - cached[1] > ACCESS_TTL_S:
        allowed = await run_in_threadpool(_may_use, services, principal, route.project_id, route.workspace_id)
        _access[key] = cached = (allowed, now)
    if not cached[0]:
        raise errors.not_found(service_id)


async def _forward(request: Request, service_id: str, path: str) -> Response:
    await _admit(request, service_id)
    body = await request.body()
    if not body:
        raise errors.empty_request()
    content_type = request.headers.get("content-type") or "application/json"
    refused: tuple[str, int] | None = None
    model_id = ""
    for _attempt in range(2):
        picked = TABLE.pick(service_id, avoid=refused)
        if picked is None:
            raise errors.unavailable(service_id)
        model_id, address = picked
        try:
            answer = await _pool.post(address, path, body, content_type, TIMEOUT_S)
        except upstream.RefusedError:
            refused = address  # it never reached the instance: another one may take it
            continue
        except TimeoutError:
            TABLE.count(service_id, model_id, failed=True)
            raise errors.backend_timeout(service_id) from None
        except upstream.BrokenError:
            TABLE.count(service_id, model_id, failed=True)
            raise errors.backend_failed(service_id) from None
        TABLE.count(service_id, model_id, failed=answer.status >= 400)
        return Response(answer.body, status_code=answer.status, media_type=answer.content_type)
    TABLE.count(service_id, model_id, failed=True)
    raise errors.backend_refused(service_id)


@router.post("/{service_id}")
async def infer(request: Request, service_id: str) -> Response:
    return await _forward(request, service_id, "")


@router.post("/{service_id}/{path:path}")
async def infer_path(request: Request, service_id: str, path: str) -> Response:
    return await _forward(request, service_id, path)
