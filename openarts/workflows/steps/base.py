"""What a step type is to the engine: a small runner it calls as the step's life goes on.

The engine owns statuses, events, placeholders, caching, timeouts and the graph; a runner only starts
its work, reports how that work stands, and stops it. Registering a new type (``steps/__init__.py``)
needs no change to the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.orm import Session

from openarts.core.identity.service import Principal
from openarts.core.services import Services
from openarts.workflows.tables import StepExecution, WorkflowExecution


class StepProblem(ValueError):  # noqa: N818 - a problem of the definition, not of the server
    """A definition a step type refuses; the message names what is wrong (the engine adds the step)."""


@dataclass
class StepContext:
    """One step of one execution, inside the engine's transaction."""

    session: Session
    services: Services
    execution: WorkflowExecution
    step: StepExecution
    definition: dict[str, Any]  # the step as the workflow defines it
    resolved: dict[str, Any]  # inputs, outputs, properties and conditions with placeholders resolved
    now_ms: int
    owner: Principal | None = None  # the user the execution acts for; None if that user is gone
    notes: list[str] = field(default_factory=list)  # extra event lines for the step

    def fail(self, code: str, message: str) -> str:
        self.step.error_info = {"error_code": code, "error_message": message[:2000]}
        return "failed"


class StepType(Protocol):
    name: str
    starting_status: str  # the status a step enters as it starts: "creating" when it makes a resource
    cacheable: bool  # policies.use_cache may reuse an earlier run with the same resolved inputs
    polls: bool  # its work runs outside the engine, which must look at it until it ends

    def validate(self, step: dict[str, Any]) -> None:
        """Raise :class:`StepProblem` for a definition this type cannot run."""

    def start(self, ctx: StepContext) -> str:
        """Start the work; the status the step is in afterwards."""

    def poll(self, ctx: StepContext) -> str:
        """How the work stands now, as a step status."""

    def stop(self, ctx: StepContext) -> str:
        """Ask the work to stop: "stopping" until it has, or "stopped"."""
