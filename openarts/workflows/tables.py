"""Workflow rows: definitions, executions and the execution of each step. Rows are the truth: the engine
re-reads them on every pass, so a restart continues every execution from where its rows say it is."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Workflow(Base):
    __tablename__ = "workflows"
    __table_args__ = (Index("ix_workflows_project_workspace", "project_id", "workspace_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str] = mapped_column(String(32))  # the owner: schedules start executions as this user
    user_name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[int]  # epoch ms
    last_modified_at: Mapped[int]
    # The definition as the API shows it (steps, parameters, data, ...), validated.
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The latest execution's status ("" before the first run): what list's status filter and overview use.
    status: Mapped[str] = mapped_column(String(16), default="")
    run_count: Mapped[int] = mapped_column(default=0)
    execution_seq: Mapped[int] = mapped_column(default=0)  # names execution-001, execution-002, ...
    latest_execution_id: Mapped[str | None] = mapped_column(String(36))


class WorkflowExecution(Base):
    __tablename__ = "workflow_executions"
    __table_args__ = (Index("ix_workflow_executions_status", "status"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(String(64))
    workspace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    user_id: Mapped[str] = mapped_column(String(32))  # job steps create jobs on behalf of this user
    trigger: Mapped[str] = mapped_column(String(32), default="manual")
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[int]
    started_at: Mapped[int] = mapped_column(default=0)
    ended_at: Mapped[int] = mapped_column(default=0)
    # The workflow as it was when the execution was created: later edits never change a run.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # with the values of this run
    data_requirements: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    policies: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    scene_id: Mapped[str | None] = mapped_column(String(64))
    scene_name: Mapped[str | None] = mapped_column(String(64))
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    stop_requested: Mapped[bool] = mapped_column(default=False)


class StepExecution(Base):
    __tablename__ = "workflow_step_executions"
    __table_args__ = (Index("ix_workflow_step_executions_cache", "workflow_id", "cache_key"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    execution_id: Mapped[str] = mapped_column(ForeignKey("workflow_executions.id", ondelete="CASCADE"), index=True)
    workflow_id: Mapped[str] = mapped_column(String(36))
    position: Mapped[int]  # the step's place in the definition
    step_name: Mapped[str] = mapped_column(String(64))
    step_uuid: Mapped[str] = mapped_column(String(36))
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    attempt: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[int]
    updated_at: Mapped[int]
    started_at: Mapped[int] = mapped_column(default=0)
    ended_at: Mapped[int] = mapped_column(default=0)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # resolved once the step starts
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    events: Mapped[list[str]] = mapped_column(JSON, default=list)
    error_info: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the step's runner keeps about its work (a job id, ...), and the instance_id it shows.
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    instance_id: Mapped[str | None] = mapped_column(String(256))
    conditions_execution: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Steps this one's outcome rules out (a condition's losing branch).
    rules_out: Mapped[list[str]] = mapped_column(JSON, default=list)
    used_cache: Mapped[bool] = mapped_column(default=False)
    cache_key: Mapped[str | None] = mapped_column(String(64))
    deadline: Mapped[int | None]  # epoch ms at which a running step times out
