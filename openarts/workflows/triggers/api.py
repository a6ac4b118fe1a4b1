"""HTTP routes of workflow schedules, subscriptions, service packages and service auth (reference D.5-D.7)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from openarts.core.auth import authenticate, principal_of
from openarts.core.clock import to_ms
from openarts.core.http import ok, route_class
from openarts.core.services import Services, services_of
from openarts.workflows.triggers import packages, schedules, subscriptions
from openarts.workflows.triggers.controller import wake_triggers

router = APIRouter(
    prefix="/v2/{project_id}/workflows",
    route_class=route_class("ModelArts.0101"),
    dependencies=[Depends(authenticate)],
    tags=["workflow triggers"],
)


def _now_ms(services: Services) -> int:
    return to_ms(services.clock.now())


# --- schedules -------------------------------------------------------------------------------------------


@router.post("/{workflow_id}/schedules", status_code=201)
def create_workflow_schedule(request: Request, workflow_id: str, body: schedules.ScheduleIn) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = schedules.create(session, principal_of(request), workflow_id, body, _now_ms(services))
    wake_triggers.set()
    return ok(payload, status_code=201)


@router.get("/{workflow_id}/schedules")
def show_workflow_schedule_list(request: Request, workflow_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(schedules.list_schedules(session, principal_of(request), workflow_id))


@router.get("/{workflow_id}/schedules/{schedule_id}")
def show_workflow_schedule(request: Request, workflow_id: str, schedule_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(schedules.show(session, principal_of(request), workflow_id, schedule_id))


@router.put("/{workflow_id}/schedules/{schedule_id}")
def update_workflow_schedule(
    request: Request, workflow_id: str, schedule_id: str, body: schedules.ScheduleUpdate
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = schedules.update(session, principal_of(request), workflow_id, schedule_id, body, _now_ms(services))
    wake_triggers.set()
    return ok(payload)


@router.delete("/{workflow_id}/schedules/{schedule_id}", status_code=204)
def delete_workflow_schedule_id(request: Request, workflow_id: str, schedule_id: str) -> Response:
    with services_of(request).db.write() as session:
        schedules.delete(session, principal_of(request), workflow_id, schedule_id)
    return Response(status_code=204)


# --- subscriptions ---------------------------------------------------------------------------------------


@router.post("/{workflow_id}/subscriptions", status_code=201)
def create_workflow_subscriptions(
    request: Request, workflow_id: str, body: subscriptions.SubscriptionIn
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = subscriptions.create(
            session, services.settings, principal_of(request), workflow_id, body, _now_ms(services)
        )
    return ok(payload, status_code=201)


@router.get("/{workflow_id}/subscriptions/{subscription_id}")
def show_workflow_subscription(request: Request, workflow_id: str, subscription_id: str) -> JSONResponse:
    with services_of(request).db.read() as session:
        return ok(subscriptions.show(session, principal_of(request), workflow_id, subscription_id))


@router.put("/{workflow_id}/subscriptions/{subscription_id}")
def update_workflow_subscription(
    request: Request, workflow_id: str, subscription_id: str, body: subscriptions.SubscriptionIn
) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        return ok(
            subscriptions.update(session, services.settings, principal_of(request), workflow_id, subscription_id, body)
        )


@router.delete("/{workflow_id}/subscriptions/{subscription_id}", status_code=204)
def delete_workflow_subscription(request: Request, workflow_id: str, subscription_id: str) -> Response:
    with services_of(request).db.write() as session:
        subscriptions.delete(session, principal_of(request), workflow_id, subscription_id)
    return Response(status_code=204)


# --- service packages --------------------------------------------------------------------------------------


@router.post("/{workflow_id}/service/packages", status_code=201)
def create_workflow_purchase_pool(request: Request, workflow_id: str, body: packages.PackageIn) -> JSONResponse:
    services = services_of(request)
    with services.db.write() as session:
        payload = packages.create(session, principal_of(request), workflow_id, body, _now_ms(services))
    return ok(payload, status_code=201)


@router.post("/service/auth")
def create_workflow_service_auth(request: Request, body: packages.ServiceAuthIn) -> JSONResponse:
    services = services_of(request)
    with services.db.read() as session:
        return ok(packages.service_auth(session, principal_of(request), body, _now_ms(services)))
