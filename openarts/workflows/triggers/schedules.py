"""Cron schedules of workflows (reference D.5): ``{"cron": "0 0 0 * * Thu", "method": "fixed"}``.

The cron has six fields, seconds first, with day and month names, read in the server's local time. Each
schedule stores its next slot; the trigger controller fires a due slot and moves ``next_fire_at`` past now
in the same transaction that starts the execution, so a slot fires at most once, even across a crash.

Slots missed while the server was down: the most recent one fires once at start-up (if the schedule was
enabled), the older ones are skipped, and the schedule goes on from the next future slot. This is
Kubernetes CronJob's rule without a deadline, and what a user of a nightly job expects: one catch-up run,
never a burst.

Policies: ``on_running: cancel`` (the seed's) skips a slot while an execution of the workflow is still
going; ``on_running: run`` starts it anyway. ``on_failure: retry`` starts the slot again when its
execution fails, at most ``MAX_RETRIES`` times; ``on_failure: ignore`` does not.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from croniter import croniter
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr
from sqlalchemy import select
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal
from openarts.core.services import Services
from openarts.workflows.errors import invalid, not_found
from openarts.workflows.executions import TRANSITION_HOOKS, Transition, start_execution
from openarts.workflows.service import get_workflow
from openarts.workflows.tables import WorkflowExecution
from openarts.workflows.times import rfc3339
from openarts.workflows.triggers.tables import ScheduleRun, WorkflowSchedule

ON_RUNNING = ("cancel", "run")
ON_FAILURE = ("retry", "ignore")
MAX_RETRIES = 2
# What counts as a run still going, for on_running: cancel.
_UNFINISHED = ("init", "created", "running", "pending", "wait_inputs", "stopping")
_FAILED = ("failed", "timeout")


class PoliciesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    on_failure: StrictStr | None = None
    on_running: StrictStr | None = None


class ScheduleIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # the SDK also sends the server's own fields back

    type: StrictStr = "time"
    action: StrictStr = "run"
    content: dict[str, Any]
    policies: PoliciesIn | None = None
    enable: StrictBool = True


class ScheduleUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    content: dict[str, Any] | None = None
    enable: StrictBool | None = None


# --- cron ---------------------------------------------------------------------------------------------


def check_content(content: dict[str, Any]) -> dict[str, str]:
    cron = content.get("cron")
    method = content.get("method", "fixed")
    if not isinstance(cron, str) or not cron.strip():
        raise invalid("content.cron is required: six fields, seconds first, e.g. '0 0 0 * * Thu'.")
    if method != "fixed":
        raise invalid(f"content.method {method!r}: only 'fixed' is supported.")
    unknown = set(content) - {"cron", "method"}
    if unknown:
        raise invalid(f"content has unknown fields {sorted(unknown)}; it takes cron and method.")
    if len(cron.split()) != 6 or not croniter.is_valid(cron, second_at_beginning=True):
        raise invalid(
            f"content.cron {cron!r} is not a valid six-field cron expression "
            "(second minute hour day-of-month month day-of-week, e.g. '0 0 0 * * Thu')."
        )
    return {"cron": cron, "method": method}


def next_slot_ms(cron: str, after_ms: int) -> int:
    """The first slot strictly after ``after_ms``, in the server's local time."""
    start = datetime.fromtimestamp(after_ms / 1000).astimezone()
    following: datetime = croniter(cron, start, second_at_beginning=True).get_next(datetime)
    return round(following.timestamp() * 1000)


def previous_slot_ms(cron: str, at_ms: int) -> int:
    """The latest slot at or before ``at_ms``."""
    start = datetime.fromtimestamp((at_ms + 1) / 1000).astimezone()
    before: datetime = croniter(cron, start, second_at_beginning=True).get_prev(datetime)
    return round(before.timestamp() * 1000)


def _policies(given: PoliciesIn | None) -> dict[str, str]:
    on_failure = (given.on_failure if given else None) or "ignore"
    on_running = (given.on_running if given else None) or "cancel"
    if on_failure not in ON_FAILURE:
        raise invalid(f"policies.on_failure {on_failure!r}: use one of {list(ON_FAILURE)}.")
    if on_running not in ON_RUNNING:
        raise invalid(f"policies.on_running {on_running!r}: use one of {list(ON_RUNNING)}.")
    return {"on_failure": on_failure, "on_running": on_running}


# --- the endpoints -----------------------------------------------------------------------------------


def to_wire(schedule: WorkflowSchedule) -> dict[str, Any]:
    return {
        "created_at": rfc3339(schedule.created_at),
        "uuid": schedule.id,
        "type": schedule.type,
        "content": schedule.content,
        "action": schedule.action,
        "policies": schedule.policies,
        "workflow_id": schedule.workflow_id,
        "user_id": schedule.user_id,
        "enable": schedule.enable,
    }


def create(session: Session, principal: Principal, workflow_id: str, body: ScheduleIn, now_ms: int) -> dict[str, Any]:
    workflow = get_workflow(session, principal, workflow_id, lock=True)
    if body.type != "time":
        raise invalid(f"type {body.type!r}: only 'time' schedules exist.")
    if body.action != "run":
        raise invalid(f"action {body.action!r}: a schedule can only 'run' the workflow.")
    content = check_content(body.content)
    schedule = WorkflowSchedule(
        id=ids.uuid4(),
        workflow_id=workflow.id,
        user_id=principal.user_id,
        type="time",
        action="run",
        content=content,
        policies=_policies(body.policies),
        enable=body.enable,
        created_at=now_ms,
        next_fire_at=next_slot_ms(content["cron"], now_ms) if body.enable else None,
    )
    session.add(schedule)
    session.flush()
    return to_wire(schedule)


def _get(session: Session, principal: Principal, workflow_id: str, schedule_id: str) -> WorkflowSchedule:
    get_workflow(session, principal, workflow_id)
    schedule = session.scalar(
        select(WorkflowSchedule).where(WorkflowSchedule.id == schedule_id, WorkflowSchedule.workflow_id == workflow_id)
    )
    if schedule is None:
        raise not_found("schedule", schedule_id)
    return schedule


def show(session: Session, principal: Principal, workflow_id: str, schedule_id: str) -> dict[str, Any]:
    return to_wire(_get(session, principal, workflow_id, schedule_id))


def list_schedules(session: Session, principal: Principal, workflow_id: str) -> dict[str, Any]:
    get_workflow(session, principal, workflow_id)
    rows = session.scalars(
        select(WorkflowSchedule)
        .where(WorkflowSchedule.workflow_id == workflow_id)
        .order_by(WorkflowSchedule.created_at, WorkflowSchedule.id)
    )
    return {"schedules": [to_wire(row) for row in rows]}


def update(
    session: Session, principal: Principal, workflow_id: str, schedule_id: str, body: ScheduleUpdate, now_ms: int
) -> dict[str, Any]:
    """Only ``content`` and ``enable`` change (reference D.5); the next slot is counted from now."""
    schedule = _get(session, principal, workflow_id, schedule_id)
    if body.content is None and body.enable is None:
        raise invalid("give content or enable to change.")
    if body.content is not None:
        schedule.content = check_content(body.content)
    if body.enable is not None:
        schedule.enable = body.enable
    schedule.next_fire_at = next_slot_ms(schedule.content["cron"], now_ms) if schedule.enable else None
    session.flush()
    return to_wire(schedule)


def delete(session: Session, principal: Principal, workflow_id: str, schedule_id: str) -> None:
    session.delete(_get(session, principal, workflow_id, schedule_id))


# --- firing (the trigger controller's) -------------------------------------------------------------------


def due_schedules(session: Session, now_ms: int) -> list[str]:
    return list(
        session.scalars(
            select(WorkflowSchedule.id).where(
                WorkflowSchedule.enable.is_(True),
                WorkflowSchedule.next_fire_at.is_not(None),
                WorkflowSchedule.next_fire_at <= now_ms,
            )
        )
    )


def next_due_ms(session: Session) -> int | None:
    due: list[int] = [
        at
        for at in session.scalars(
            select(WorkflowSchedule.next_fire_at).where(
                WorkflowSchedule.enable.is_(True), WorkflowSchedule.next_fire_at.is_not(None)
            )
        )
        if at is not None
    ]
    return min(due) if due else None


def fire(session: Session, services: Services, schedule_id: str, now_ms: int) -> ScheduleRun | None:
    """Fire the schedule's due slot (the latest one at or before now: older missed ones are skipped) and
    move it to the next future slot; all in the caller's transaction."""
    schedule = session.scalar(select(WorkflowSchedule).where(WorkflowSchedule.id == schedule_id).with_for_update())
    if schedule is None or not schedule.enable or schedule.next_fire_at is None or schedule.next_fire_at > now_ms:
        return None
    cron = schedule.content["cron"]
    slot = max(schedule.next_fire_at, previous_slot_ms(cron, now_ms))
    schedule.next_fire_at = next_slot_ms(cron, now_ms)
    if schedule.policies.get("on_running") == "cancel" and _still_running(session, schedule.workflow_id):
        return _record(session, schedule, slot, 1, "skipped", None, "a run of the workflow was still going", now_ms)
    return _start(session, services, schedule, slot, 1, now_ms)


def _still_running(session: Session, workflow_id: str) -> bool:
    running = session.scalar(
        select(WorkflowExecution.id)
        .where(WorkflowExecution.workflow_id == workflow_id, WorkflowExecution.status.in_(_UNFINISHED))
        .limit(1)
    )
    return running is not None


def _start(
    session: Session, services: Services, schedule: WorkflowSchedule, slot: int, attempt: int, now_ms: int
) -> ScheduleRun:
    try:
        with session.begin_nested():  # a refused start (a package at its limit...) leaves nothing half-done
            execution = start_execution(
                session,
                services,
                schedule.workflow_id,
                {"description": f"schedule {schedule.id}"},
                now_ms,
                trigger="schedule",
            )
    except ApiError as exc:
        return _record(session, schedule, slot, attempt, "refused", None, exc.message, now_ms)
    return _record(session, schedule, slot, attempt, "started", execution["execution_id"], "", now_ms)


def _record(
    session: Session,
    schedule: WorkflowSchedule,
    slot: int,
    attempt: int,
    status: str,
    execution_id: str | None,
    message: str,
    now_ms: int,
) -> ScheduleRun:
    run = ScheduleRun(
        schedule_id=schedule.id,
        slot_at=slot,
        attempt=attempt,
        status=status,
        execution_id=execution_id,
        message=message,
        created_at=now_ms,
    )
    session.add(run)
    session.flush()
    return run


def pending_retries(session: Session) -> list[int]:
    return list(session.scalars(select(ScheduleRun.id).where(ScheduleRun.status == "pending")))


def start_retry(session: Session, services: Services, run_id: int, now_ms: int) -> None:
    run = session.get(ScheduleRun, run_id)
    if run is None or run.status != "pending":
        return
    schedule = session.get(WorkflowSchedule, run.schedule_id)
    if schedule is None:
        session.delete(run)
        return
    started = _start(session, services, schedule, run.slot_at, run.attempt, now_ms)
    session.delete(run)  # the pending mark becomes the started (or refused) run
    session.flush()
    started.message = started.message or f"retry {run.attempt - 1} of a failed run"


def _retry_failed_runs(session: Session, transition: Transition) -> None:
    """A scheduled execution that failed is run again for its slot when its schedule says retry."""
    if transition.step_name is not None or transition.new not in _FAILED:
        return
    run = session.scalar(select(ScheduleRun).where(ScheduleRun.execution_id == transition.execution_id))
    if run is None or run.attempt > MAX_RETRIES:
        return
    schedule = session.get(WorkflowSchedule, run.schedule_id)
    if schedule is None or schedule.policies.get("on_failure") != "retry":
        return
    session.add(
        ScheduleRun(
            schedule_id=schedule.id,
            slot_at=run.slot_at,
            attempt=run.attempt + 1,
            status="pending",
            execution_id=None,
            message="",
            created_at=transition.at_ms,
        )
    )


TRANSITION_HOOKS.append(_retry_failed_runs)
