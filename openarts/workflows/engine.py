"""The engine: one pass over one execution, inside one transaction.

A pass looks at the steps whose work runs elsewhere (jobs), ends the ones past their deadline, then
starts every step whose upstream steps are done, in graph order, again and again until nothing changes:
a step finishing starts its successors in the same pass (a chain of conditions runs in one). Everything
it decides is written to the rows, so a pass after a restart picks up where the last one left off.

Statuses (reference D.4): executions init, running, completed, stopped, abnormal; steps init,
wait_inputs, pending, creating, created, create_failed, running, stopping, stopped, timeout, completed,
failed, hold, skipped. Every change is an event string and a call of each :data:`TRANSITION_HOOKS`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from openarts.core.identity.service import Principal
from openarts.core.identity.tables import Domain, User
from openarts.core.services import Services
from openarts.training.jobs import service as jobs_service
from openarts.workflows import refs, steps, validate
from openarts.workflows.signals import wake
from openarts.workflows.steps.base import StepContext
from openarts.workflows.tables import StepExecution, Workflow, WorkflowExecution
from openarts.workflows.times import stamp

RUNNING_EXECUTION = ("init", "running")
BUSY = ("creating", "created", "running", "stopping")  # the step's work is under way
WAITING = ("init", "pending", "wait_inputs", "hold")  # not started yet
BROKEN = ("failed", "create_failed", "timeout", "stopped")
DONE = ("completed", "skipped")
DEFAULT_MAX_MINUTES = 10080


@dataclass(frozen=True)
class Transition:
    """A status change, as the hooks see it. ``step_name`` is None for the execution itself."""

    workflow_id: str
    execution_id: str
    step_name: str | None
    step_execution_id: str | None
    old: str
    new: str
    at_ms: int


# Called inside the transaction on every step and execution status change (subscriptions use this).
TRANSITION_HOOKS: list[Callable[[Session, Transition], None]] = []


@dataclass
class Pulse:
    """What an execution needs from the controller after a pass."""

    watching: bool  # a step's outside work (a job) must be looked at again soon
    next_deadline_ms: int | None  # the earliest time a running step times out


def wake_after_commit(session: Session) -> None:
    """Wake the workflow and training controllers once this transaction commits (never before: they would
    look too early and then sleep)."""
    if not session.info.get("workflow_wake"):
        session.info["workflow_wake"] = True

        def _wake(_session: Session) -> None:
            wake.set()
            jobs_service.wake_controller.set()

        event.listen(session, "after_commit", _wake, once=True)


def owner_of(session: Session, user_id: str, project_id: str) -> Principal | None:
    row = session.execute(
        select(User.id, User.name, Domain.id, Domain.name, User.is_admin, User.enabled)
        .join(Domain, Domain.id == User.domain_id)
        .where(User.id == user_id)
    ).first()
    if row is None or not row.enabled:
        return None
    return Principal(row[0], row[1], row[2], row[3], project_id, bool(row.is_admin))


def cache_key(step_type: str, resolved: dict[str, Any]) -> str:
    canonical = json.dumps([step_type, resolved], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def set_execution_status(session: Session, execution: WorkflowExecution, new: str, now_ms: int) -> None:
    old = execution.status
    if old == new:
        return
    execution.status = new
    execution.events = [*execution.events, f"{stamp(now_ms)} change status from {old} to {new}"]
    if new in ("completed", "stopped", "abnormal"):
        execution.ended_at = now_ms
    workflow = session.get(Workflow, execution.workflow_id)
    if workflow is not None and workflow.latest_execution_id == execution.id:
        workflow.status = new
    hook = Transition(execution.workflow_id, execution.id, None, None, old, new, now_ms)
    for call in TRANSITION_HOOKS:
        call(session, hook)


class Pass:
    """One pass over one execution (see the module's docstring)."""

    def __init__(self, session: Session, services: Services, execution: WorkflowExecution, now_ms: int) -> None:
        self.session = session
        self.services = services
        self.execution = execution
        self.now_ms = now_ms
        rows = session.scalars(
            select(StepExecution).where(StepExecution.execution_id == execution.id).order_by(StepExecution.position)
        ).all()
        self.steps: dict[str, StepExecution] = {row.step_name: row for row in rows}
        snapshot = execution.snapshot
        self.definitions = {step["name"]: step for step in snapshot["steps"] if step["name"] in self.steps}
        # Steps outside the run (another scene) are not part of its graph.
        full = validate.edges(snapshot)
        self.upstream = {name: [p for p in full[name] if p in self.steps] for name in self.steps}
        self.order = [name for name in validate.topological(self.upstream)]
        self.ruled_out: set[str] = set()
        for row in rows:
            if row.status == "completed":
                self.ruled_out.update(row.rules_out)
        self._scope: refs.Scope | None = None
        self._owner: Principal | None = None
        self._owner_loaded = False

    # --- status changes ------------------------------------------------------------------------

    def move(self, step: StepExecution, new: str) -> None:
        old = step.status
        if old == new:
            return
        step.status = new
        step.updated_at = self.now_ms
        line = f"change status from {old} to {new}"
        step.events = [*step.events, f"{stamp(self.now_ms)} {line}"]
        self.execution.events = [*self.execution.events, f"{stamp(self.now_ms)} step {step.step_name} {line}"]
        if new in BUSY and not step.started_at:
            step.started_at = self.now_ms
        if new in DONE or new in BROKEN:
            step.ended_at = self.now_ms
            step.deadline = None
        if new == "completed":
            self.ruled_out.update(step.rules_out)
            self._scope = None
        hook = Transition(self.execution.workflow_id, self.execution.id, step.step_name, step.id, old, new, self.now_ms)
        for call in TRANSITION_HOOKS:
            call(self.session, hook)

    def note(self, step: StepExecution, text: str) -> None:
        step.events = [*step.events, f"{stamp(self.now_ms)} {text}"]

    # --- placeholders --------------------------------------------------------------------------

    def scope(self) -> refs.Scope:
        if self._scope is None:
            execution = self.execution
            scope = refs.Scope()
            for parameter in execution.parameters:
                value = parameter.get("value", parameter.get("default"))
                if value is None:
                    value = parameter.get("default")
                if value is not None:
                    scope.parameters[parameter["name"]] = value
            for item in execution.snapshot.get("data") or []:
                scope.data[item["name"]] = item.get("value") or {}
            for item in execution.data_requirements:
                if item.get("value") is not None:
                    scope.data_requirements[item["name"]] = item["value"]
            for name, row in self.steps.items():
                if row.status == "completed":
                    scope.consumptions[name] = {o["name"]: o.get("config") or {} for o in row.outputs}
            self._scope = scope
        return self._scope

    def resolve(self, definition: dict[str, Any]) -> dict[str, Any]:
        scope = self.scope()
        inputs = []
        for item in definition.get("inputs") or []:
            data = refs.resolve(item.get("data"), scope)
            value = data if data is not None else item.get("value")
            if isinstance(value, str) and item.get("type") == "obs":
                value = {"obs_url": value}
            inputs.append({**item, "value": value})
        return {
            "inputs": inputs,
            "outputs": refs.resolve(definition.get("outputs") or [], scope),
            "properties": refs.resolve(definition.get("properties") or {}, scope),
            "conditions": refs.resolve(definition.get("conditions") or [], scope),
        }

    def missing(self, definition: dict[str, Any]) -> list[refs.Ref]:
        """The delay parameters and data requirements the step uses that have no value yet."""
        scope = self.scope()
        delayed = {
            ("parameters", p["name"])
            for p in self.execution.parameters
            if p.get("delay") and p["name"] not in scope.parameters
        }
        delayed |= {
            ("data_requirements", d["name"])
            for d in self.execution.data_requirements
            if d.get("value") is None and d["name"] not in scope.data_requirements
        }
        found = refs.find([definition.get(field) for field in validate.STEP_FIELDS])
        wanted: list[refs.Ref] = []
        for ref in found:
            if (ref.kind, ref.name) in delayed and ref not in wanted:
                wanted.append(ref)
        return wanted

    # --- runners -------------------------------------------------------------------------------

    def owner(self) -> Principal | None:
        if not self._owner_loaded:
            self._owner = owner_of(self.session, self.execution.user_id, self.execution.project_id)
            self._owner_loaded = True
        return self._owner

    def context(self, step: StepExecution, resolved: dict[str, Any] | None = None) -> StepContext:
        definition = self.definitions[step.step_name]
        if resolved is None:
            resolved = {
                "inputs": step.inputs,
                "outputs": step.outputs,
                "properties": step.properties,
                "conditions": step.state.get("conditions") or [],
            }
        return StepContext(
            self.session, self.services, self.execution, step, definition, resolved, self.now_ms, self.owner()
        )

    def readiness(self, name: str) -> str:
        """ "skip", "blocked" (an upstream step broke), "wait" (upstream still going) or "go"."""
        if name in self.ruled_out:
            return "skip"
        parents = [self.steps[p].status for p in self.upstream[name]]
        if any(status not in DONE and status not in BROKEN for status in parents):
            return "wait"
        if any(status in BROKEN for status in parents):
            return "blocked"
        if parents and all(status == "skipped" for status in parents):
            return "skip"
        return "go"

    def start(self, step: StepExecution) -> None:
        definition = self.definitions[step.step_name]
        kind = steps.get(step.type)
        if kind is None:
            step.error_info = {"error_code": "ModelArts.0104", "error_message": f"step type {step.type} is unknown"}
            self.move(step, "failed")
            return
        if self.missing(definition):
            self.move(step, "wait_inputs")
            return
        try:
            resolved = self.resolve(definition)
        except refs.Missing as exc:
            step.error_info = {"error_code": "ModelArts.0104", "error_message": f"{exc.ref.text} has no value"}
            self.move(step, "failed")
            return
        if step.status == "wait_inputs":
            self.move(step, "pending")
        step.inputs, step.outputs = resolved["inputs"], resolved["outputs"]
        step.properties = resolved["properties"]
        if resolved["conditions"]:
            step.state = {**step.state, "conditions": resolved["conditions"]}
        if kind.cacheable:
            step.cache_key = cache_key(step.type, {k: resolved[k] for k in ("inputs", "outputs", "properties")})
            if (self.execution.policies or {}).get("use_cache") and self.reuse(step):
                return
        minutes = int((definition.get("policy") or {}).get("max_execution_minutes") or DEFAULT_MAX_MINUTES)
        step.deadline = self.now_ms + minutes * 60_000
        self.move(step, kind.starting_status)
        ctx = self.context(step, resolved)
        status = kind.start(ctx)
        if status == "completed" and step.status == "creating":
            self.move(step, "created")
        self.move(step, status)
        if kind.polls:
            wake_after_commit(self.session)

    def reuse(self, step: StepExecution) -> bool:
        """policies.use_cache: take the outputs of an earlier completed run of the same step and inputs."""
        earlier = self.session.scalar(
            select(StepExecution)
            .where(
                StepExecution.workflow_id == step.workflow_id,
                StepExecution.cache_key == step.cache_key,
                StepExecution.status == "completed",
                StepExecution.id != step.id,
                StepExecution.used_cache.is_(False),
            )
            .order_by(StepExecution.ended_at.desc())
            .limit(1)
        )
        if earlier is None:
            return False
        source = self.session.get(WorkflowExecution, earlier.execution_id)
        step.outputs, step.state, step.instance_id = earlier.outputs, earlier.state, earlier.instance_id
        step.used_cache = True
        step.started_at = self.now_ms
        where = f"execution {source.name if source else earlier.execution_id}"
        self.note(step, f"use cache of step execution {earlier.id} ({where})")
        self.move(step, "completed")
        return True

    # --- the pass ------------------------------------------------------------------------------

    def watch(self) -> None:
        for step in self.steps.values():
            if step.status not in BUSY:
                continue
            kind = steps.get(step.type)
            if kind is None:
                continue
            ctx = self.context(step)
            if step.status != "stopping" and step.deadline is not None and self.now_ms >= step.deadline:
                kind.stop(ctx)
                minutes = (self.definitions[step.step_name].get("policy") or {}).get("max_execution_minutes")
                step.error_info = {
                    "error_code": "ModelArts.0104",
                    "error_message": "the step ran longer than max_execution_minutes "
                    f"({minutes or DEFAULT_MAX_MINUTES})",
                }
                self.move(step, "timeout")
                wake_after_commit(self.session)
                continue
            status = kind.poll(ctx)
            if status == "completed" and step.status in ("creating", "created"):
                self.move(step, "running")  # a job shorter than a poll still went through running
            self.move(step, status)

    def schedule(self) -> None:
        changed = True
        while changed:
            changed = False
            for name in self.order:
                step = self.steps[name]
                if step.status not in ("init", "pending", "wait_inputs"):
                    continue
                verdict = self.readiness(name)
                before = step.status
                if verdict == "skip":
                    self.move(step, "skipped")
                elif verdict == "go":
                    self.start(step)
                changed = changed or step.status != before

    def stop_all(self) -> None:
        for step in self.steps.values():
            if step.status in ("creating", "created", "running"):
                kind = steps.get(step.type)
                self.move(step, kind.stop(self.context(step)) if kind else "stopped")
                wake_after_commit(self.session)
            elif step.status == "stopping":
                kind = steps.get(step.type)
                if kind is not None:
                    self.move(step, kind.poll(self.context(step)))
            elif step.status in ("pending", "wait_inputs", "hold"):
                self.move(step, "stopped")

    def settle(self) -> Pulse:
        statuses = [step.status for step in self.steps.values()]
        watching = any(
            status in BUSY and (kind := steps.get(step.type)) is not None and kind.polls
            for step, status in zip(self.steps.values(), statuses, strict=True)
        )
        deadlines = [s.deadline for s in self.steps.values() if s.status in BUSY and s.deadline]
        pulse = Pulse(watching, min(deadlines) if deadlines else None)
        if any(status in BUSY or status in ("pending", "wait_inputs", "hold") for status in statuses):
            return pulse
        if self.execution.stop_requested:
            final = "stopped"
        elif any(status in ("failed", "create_failed", "timeout") for status in statuses):
            final = "abnormal"
        elif "stopped" in statuses:
            final = "stopped"
        else:
            final = "completed"
        set_execution_status(self.session, self.execution, final, self.now_ms)
        return pulse


def advance(session: Session, services: Services, execution_id: str, now_ms: int) -> Pulse:
    """One pass over the execution, if it is still running; the caller's transaction commits it."""
    execution = session.scalar(select(WorkflowExecution).where(WorkflowExecution.id == execution_id).with_for_update())
    if execution is None or execution.status not in RUNNING_EXECUTION:
        return Pulse(False, None)
    if execution.status == "init":
        execution.started_at = execution.started_at or now_ms
        set_execution_status(session, execution, "running", now_ms)
    run = Pass(session, services, execution, now_ms)
    if execution.stop_requested:
        run.stop_all()
    else:
        run.watch()
        run.schedule()
    return run.settle()
