"""The registry of step types: type name -> runner. ``job``, ``condition``, ``model`` and ``service``
come with the engine; other families add theirs with :func:`register`.
A type not registered here is refused when a workflow is created or updated."""

from __future__ import annotations

from openarts.workflows.steps.base import StepContext, StepProblem, StepType

STEP_TYPES: dict[str, StepType] = {}


def register(step_type: StepType) -> None:
    STEP_TYPES[step_type.name] = step_type


def get(name: str) -> StepType | None:
    return STEP_TYPES.get(name)


from openarts.workflows.steps import condition, job, model, service  # noqa: E402 - they register themselves

__all__ = [
    "STEP_TYPES",
    "StepContext",
    "StepProblem",
    "StepType",
    "condition",
    "get",
    "job",
    "model",
    "register",
    "service",
]
