"""Wire schemas of model management: what a client may send."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class CreateModel(BaseModel):
    """``POST /v1/{project_id}/models`` (reference 2.2). Fields the platform only echoes stay loose."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_name: str
    model_version: str
    source_location: str | None = None
    model_type: str | None = None
    runtime: str | None = None
    execution_code: str | None = None
    source_job_id: str | None = None
    source_job_version: str | None = None
    source_type: str | None = None
    description: str | None = None
    model_algorithm: str | None = None
    model_metrics: str | None = None
    apis: list[dict[str, Any]] | None = None
    input_params: list[dict[str, Any]] | None = None
    output_params: list[dict[str, Any]] | None = None
    dependencies: list[dict[str, Any]] | None = None
    initial_config: str | None = None
    workspace_id: str = "0"
    model_docs: list[dict[str, Any]] | None = None
    install_type: list[str] | None = None
    template: dict[str, Any] | None = None
    source_copy: str | None = None


class ListModelsQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    model_name: str | None = None
    exact_match: bool = False
    model_version: str | None = None
    model_status: str | None = None
    model_type: str | None = None
    not_model_type: str | None = None
    description: str | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=1000)
    sort_by: str = "create_at"
    order: str = "desc"
    workspace_id: str = "0"


class DeleteModelQuery(BaseModel):
    cascade: bool = False
