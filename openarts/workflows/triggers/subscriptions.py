"""Event subscriptions of workflows (reference D.6): ``events`` like ``"*:failed,completed"`` (the
execution itself) or ``"job_step:stopped"`` (one step); each matching transition is POSTed as JSON to the
webhook its topic URN maps to.

ModelArts publishes to SMN topics; OpenArts has no SMN, so the server's configuration maps each topic URN
to a webhook URL (``OPENARTS_WORKFLOW_WEBHOOKS``, a JSON object). That map is also the allow-list: a
subscription may name only configured topics, so no user can make the server send requests to an
address of their choosing. A delivery is recorded in the transaction of the transition it reports, then
sent by the trigger controller, retried with exponential backoff, and every outcome kept.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from openarts.config import Settings
from openarts.core import ids
from openarts.core.identity.service import Principal
from openarts.workflows.errors import invalid, not_found
from openarts.workflows.executions import TRANSITION_HOOKS, Transition
from openarts.workflows.service import get_workflow
from openarts.workflows.times import rfc3339
from openarts.workflows.triggers.tables import WebhookDelivery, WorkflowSubscription

MAX_ATTEMPTS = 6
FIRST_BACKOFF_MS = 1000  # then 2 s, 4 s, 8 s, 16 s
SEND_TIMEOUT_S = 5.0
MAX_EVENTS = 20
# The console's words for statuses (reference D.6), and a short form the manual's example uses.
STATUS_ALIASES = {
    "success": "completed",
    "abnormal": "failed",
    "wait for input": "wait_inputs",
    "stop": "stopped",
}


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDK sends subscription_id/created_at back as None

    topic_urns: list[StrictStr]
    entity: StrictStr = ""
    events: list[StrictStr]


def configured_webhooks(settings: Settings) -> dict[str, str]:
    if not settings.workflow_webhooks:
        return {}
    mapping = json.loads(settings.workflow_webhooks)
    return {str(topic): str(url) for topic, url in mapping.items()}


def parse_event(event: str) -> tuple[str, set[str]]:
    """``"<step name or *>:<status>[,<status>...]"`` as (step, statuses)."""
    step, colon, statuses = event.partition(":")
    wanted = {STATUS_ALIASES.get(s.strip().lower(), s.strip().lower()) for s in statuses.split(",") if s.strip()}
    if not colon or not step.strip() or not wanted:
        raise invalid(f"event {event!r}: use '<step name or *>:<status>[,<status>...]', e.g. '*:failed,completed'.")
    return step.strip(), wanted


def _check(settings: Settings, workflow_steps: set[str], body: SubscriptionIn) -> None:
    if not body.topic_urns:
        raise invalid("topic_urns: give at least one topic.")
    known = configured_webhooks(settings)
    for urn in body.topic_urns:
        if urn not in known:
            raise invalid(
                f"topic {urn!r} has no webhook in this server's configuration (OPENARTS_WORKFLOW_WEBHOOKS); "
                "subscriptions may only name configured topics."
            )
    if not body.events or len(body.events) > MAX_EVENTS:
        raise invalid(f"events: give 1 to {MAX_EVENTS} events.")
    for event in body.events:
        step, _ = parse_event(event)
        if step != "*" and step not in workflow_steps:
            raise invalid(f"event {event!r} names step {step!r}, which the workflow has not.")


def to_wire(subscription: WorkflowSubscription) -> dict[str, Any]:
    return {
        "created_at": rfc3339(subscription.created_at),
        "subscription_id": subscription.id,
        "topic_urns": subscription.topic_urns,
        "entity": subscription.entity,
        "events": subscription.events,
    }


def _steps_of(definition: dict[str, Any]) -> set[str]:
    return {str(step.get("name")) for step in definition.get("steps") or []}


def create(
    session: Session, settings: Settings, principal: Principal, workflow_id: str, body: SubscriptionIn, now_ms: int
) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    _check(settings, _steps_of(workflow.definition), body)
    subscription = WorkflowSubscription(
        id=ids.uuid4(),
        workflow_id=workflow.id,
        topic_urns=list(body.topic_urns),
        entity=body.entity,
        events=list(body.events),
        created_at=now_ms,
    )
    session.add(subscription)
    session.flush()
    return to_wire(subscription)


def _get(session: Session, principal: Principal, workflow_id: str, subscription_id: str) -> WorkflowSubscription:
    get_workflow(session, principal, workflow_id)
    subscription = session.scalar(
        select(WorkflowSubscription).where(
            WorkflowSubscription.id == subscription_id, WorkflowSubscription.workflow_id == workflow_id
        )
    )
    if subscription is None:
        raise not_found("subscription", subscription_id)
    return subscription


def show(session: Session, principal: Principal, workflow_id: str, subscription_id: str) -> dict[str, Any]:
    return to_wire(_get(session, principal, workflow_id, subscription_id))


def update(
    session: Session,
    settings: Settings,
    principal: Principal,
    workflow_id: str,
    subscription_id: str,
    body: SubscriptionIn,
) -> dict[str, Any]:
    subscription = _get(session, principal, workflow_id, subscription_id)
    workflow = get_workflow(session, principal, workflow_id)
    _check(settings, _steps_of(workflow.definition), body)
    subscription.topic_urns, subscription.entity, subscription.events = (
        list(body.topic_urns),
        body.entity,
        list(body.events),
    )
    session.flush()
    return to_wire(subscription)


def delete(session: Session, principal: Principal, workflow_id: str, subscription_id: str) -> None:
    session.delete(_get(session, principal, workflow_id, subscription_id))


# --- deliveries --------------------------------------------------------------------------------------

# The webhook map is read at start-up by the trigger controller (see controller.py), so the hook, which
# runs inside the engine's transactions, needs no settings.
_webhooks: dict[str, str] = {}


def use_webhooks(mapping: dict[str, str]) -> None:
    _webhooks.clear()
    _webhooks.update(mapping)


def matches(events: list[str], transition: Transition) -> bool:
    for event in events:
        step, statuses = parse_event(event)
        subject_matches = transition.step_name is None if step == "*" else transition.step_name == step
        if subject_matches and transition.new in statuses:
            return True
    return False


def _record_deliveries(session: Session, transition: Transition) -> None:
    subscriptions = session.scalars(
        select(WorkflowSubscription).where(WorkflowSubscription.workflow_id == transition.workflow_id)
    ).all()
    for subscription in subscriptions:
        if not matches(subscription.events, transition):
            continue
        payload = {
            "subscription_id": subscription.id,
            "entity": subscription.entity,
            "workflow_id": transition.workflow_id,
            "execution_id": transition.execution_id,
            "step_name": transition.step_name,
            "step_execution_id": transition.step_execution_id,
            "old_status": transition.old,
            "status": transition.new,
            "time": rfc3339(transition.at_ms),
        }
        for urn in subscription.topic_urns:
            url = _webhooks.get(urn)
            if url is None:
                continue  # the topic left the configuration since: nothing to send it to
            session.add(
                WebhookDelivery(
                    subscription_id=subscription.id,
                    topic_urn=urn,
                    url=url,
                    payload={**payload, "topic_urn": urn},
                    status="pending",
                    attempts=0,
                    next_attempt_at=transition.at_ms,
                    last_error="",
                    created_at=transition.at_ms,
                )
            )


TRANSITION_HOOKS.append(_record_deliveries)


def due_deliveries(session: Session, now_ms: int) -> list[int]:
    return list(
        session.scalars(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now_ms)
            .order_by(WebhookDelivery.id)
        )
    )


def send(client: httpx.Client, url: str, payload: dict[str, Any]) -> str | None:
    """POST one delivery; None when the webhook took it (2xx), else what went wrong."""
    try:
        response = client.post(url, json=payload, timeout=SEND_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}"


def settle(delivery: WebhookDelivery, error: str | None, now_ms: int) -> None:
    delivery.attempts += 1
    if error is None:
        delivery.status, delivery.last_error = "delivered", ""
        return
    delivery.last_error = error
    if delivery.attempts >= MAX_ATTEMPTS:
        delivery.status = "failed"
    else:
        delivery.next_attempt_at = now_ms + FIRST_BACKOFF_MS * 2 ** (delivery.attempts - 1)
