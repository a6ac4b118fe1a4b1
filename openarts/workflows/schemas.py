"""Wire schemas of workflow requests (field names as the SDK's models spell them).

Structure is checked here (unknown fields refused, so a misspelt one is never dropped silently); what
the fields mean together (names, graph, references) is checked in ``validate.py``. Fields typed
``object`` by the SDK (parameter values, condition operands, step properties) stay ``Any``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

Text = Annotated[StrictStr, Field(max_length=1024)]
Name = Annotated[StrictStr, Field(max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobInput(_Model):
    name: Name
    type: Name
    data: Any = None
    value: Any = None


class JobOutput(_Model):
    name: Name
    type: Name
    config: dict[str, Any] | None = None


class StepCondition(_Model):
    type: Name
    left: Any = None
    right: Any = None


class StepPolicy(_Model):
    poll_interval_seconds: StrictStr | None = None
    max_execution_minutes: StrictStr | None = None
    skip_conditions: list[Any] | None = None


class Step(_Model):
    name: Name
    type: Name
    title: Text | None = None
    description: Text | None = None
    created_at: StrictStr | None = None
    inputs: Annotated[list[JobInput], Field(max_length=100)] = []
    outputs: Annotated[list[JobOutput], Field(max_length=100)] = []
    properties: dict[str, Any] | None = None
    depend_steps: Annotated[list[Name], Field(max_length=200)] = []
    conditions: Annotated[list[StepCondition], Field(max_length=100)] | None = None
    if_then_steps: list[Name] | None = None
    else_then_steps: list[Name] | None = None
    policy: StepPolicy | None = None


class Parameter(_Model):
    name: Name
    type: Name
    description: Text | None = None
    example: Any = None
    delay: StrictBool | None = None
    default: Any = None
    value: Any = None
    enum: list[Any] | None = None
    used_steps: list[Name] | None = None
    format: Name | None = None
    constraint: dict[str, Any] | None = None


class Constraint(_Model):
    attribute: Name
    operator: Name
    value: Any = None


class Data(_Model):
    name: Name
    type: Name
    value: dict[str, Any] | None = None
    used_steps: list[Name] | None = None


class DataRequirement(_Model):
    name: Name
    type: Name
    conditions: list[Constraint] | None = None
    value: dict[str, Any] | None = None
    used_steps: list[Name] | None = None
    delay: StrictBool | None = None


class Storage(_Model):
    name: Name
    type: Name
    path: Text


class Subgraph(_Model):
    name: Name
    steps: list[Name] = []


class Scene(_Model):
    id: Name | None = None
    name: Name | None = None
    steps: list[Name] = []


class Policy(_Model):
    use_scene: Any = None
    scene_id: Name | None = None
    scenes: list[Scene] | None = None


STEP_LIMIT = 500


class WorkflowIn(_Model):
    """``WorkflowParam`` on create; the server-filled fields it also carries are accepted and ignored."""

    name: Name
    description: Text | None = None
    workspace_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "0"
    user_name: Name | None = None
    steps: Annotated[list[Step], Field(max_length=STEP_LIMIT)] = []
    data_requirements: list[DataRequirement] = []
    data: list[Data] = []
    parameters: list[Parameter] = []
    storages: list[Storage] = []
    labels: Annotated[list[Name], Field(max_length=50)] = []
    sub_graphs: list[Subgraph] = []
    policy: Policy | None = None
    assets: list[dict[str, Any]] | None = None
    gallery_subscription: dict[str, Any] | None = None
    source_workflow_id: Name | None = None
    source: Name | None = None
    extend: dict[str, Any] | None = None
    with_subscription: StrictBool | None = None
    smn_switch: Any = None
    subscription_id: Name | None = None
    exeml_template_id: Name | None = None
    package: dict[str, Any] | None = None
    # Server-filled; ignored on input.
    latest_execution: Any = None
    run_count: Any = None
    param_ready: Any = None
    last_modified_at: Any = None
    workflow_id: Any = None
    created_at: Any = None


class WorkflowUpdate(_Model):
    name: Name | None = None
    description: Text | None = None
    data_requirements: list[DataRequirement] | None = None
    parameters: list[Parameter] | None = None
    storages: list[Storage] | None = None
    labels: Annotated[list[Name], Field(max_length=50)] | None = None
    smn_switch: Any = None
    steps: Annotated[list[Step], Field(max_length=STEP_LIMIT)] | None = None
    data: list[Data] | None = None
    sub_graphs: list[Subgraph] | None = None
    policy: Policy | None = None


class Value(BaseModel):
    """A parameter or data requirement given a value for one run (only ``name`` and ``value`` matter)."""

    model_config = ConfigDict(extra="ignore")
    name: Name
    value: Any = None


class DagPolicies(_Model):
    use_cache: StrictBool | None = None


class ExecutionIn(BaseModel):
    """``WorkflowExecution`` on create and update; server-filled fields are ignored."""

    model_config = ConfigDict(extra="ignore")
    name: Annotated[StrictStr, Field(max_length=64)] | None = None
    description: Text | None = None
    workspace_id: StrictStr | None = None
    labels: Annotated[list[Name], Field(max_length=50)] | None = None
    parameters: list[Value] | None = None
    data_requirements: list[Value] | None = None
    policies: DagPolicies | None = None
    scene_id: Name | None = None
    scene_name: Name | None = None


class ActionPolicies(_Model):
    rerun_steps: list[Name] | None = None


class ExecutionAction(_Model):
    action_name: Name
    policies: ActionPolicies | None = None
    parameters: list[Value] | None = None
    data_requirements: list[Value] | None = None


class StepAction(_Model):
    action_name: Name
    parameters: list[Value] | None = None
    data_requirements: list[Value] | None = None
