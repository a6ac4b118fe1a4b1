"""Wire schemas of training jobs (field names as the SDK's ``Job`` model spells them).

The parts OpenArts acts on are modelled strictly (unknown fields are refused, so a misspelt field
is never silently dropped); ModelArts options that have no meaning on one machine (volumes,
notifications, schedule policies, ...) are accepted as they are and echoed back.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

JOB_NAME = r"^[A-Za-z0-9_-]{1,64}$"
ARG_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"  # becomes --name=value: never starts with "-"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
PHASES = ("Creating", "Pending", "Running", "Completed", "Failed", "Terminating", "Terminated", "Abnormal")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ParameterIn(_Model):
    name: Annotated[StrictStr, Field(pattern=ARG_NAME)]
    value: Annotated[StrictStr, Field(max_length=8192)] = ""
    description: Annotated[StrictStr, Field(max_length=256)] | None = None
    constraint: dict[str, Any] | None = None
    i18n_description: dict[str, Any] | None = None


class ObsRef(_Model):
    obs_url: Annotated[StrictStr, Field(min_length=1, max_length=1024)]


class RemoteIn(_Model):
    obs: ObsRef | None = None
    dataset: dict[str, Any] | None = None


class DataIn(_Model):
    name: Annotated[StrictStr, Field(pattern=ARG_NAME)]
    description: Annotated[StrictStr, Field(max_length=256)] | None = None
    local_dir: StrictStr | None = None
    access_method: Literal["parameter", "env"] = "parameter"
    remote: RemoteIn | None = None  # an algorithm declares the channel; the job says where its data is
    remote_constraint: list[dict[str, Any]] | None = None


class EngineIn(_Model):
    engine_id: StrictStr | None = None
    engine_name: StrictStr | None = None
    engine_version: StrictStr | None = None
    image_url: StrictStr | None = None
    install_sys_packages: StrictBool | None = None
    image_repo_id: StrictStr | None = None


class AlgorithmIn(_Model):
    id: StrictStr | None = None
    name: StrictStr | None = None
    subscription_id: StrictStr | None = None
    item_version_id: StrictStr | None = None
    code_dir: StrictStr | None = None
    boot_file: StrictStr | None = None
    autosearch_config_path: StrictStr | None = None
    autosearch_framework_path: StrictStr | None = None
    command: Annotated[StrictStr, Field(max_length=4096)] | None = None
    parameters: Annotated[list[ParameterIn], Field(max_length=100)] = []
    policies: dict[str, Any] | None = None
    inputs: Annotated[list[DataIn], Field(max_length=20)] = []
    outputs: Annotated[list[DataIn], Field(max_length=20)] = []
    engine: EngineIn | None = None
    local_code_dir: StrictStr | None = None
    working_dir: StrictStr | None = None
    environments: (
        Annotated[
            dict[Annotated[str, Field(pattern=ENV_NAME)], Annotated[str, Field(max_length=4096)]], Field(max_length=100)
        ]
        | None
    ) = None
    summary: dict[str, Any] | None = None


class ExperimentRefIn(_Model):
    id: StrictStr | None = None
    name: StrictStr | None = None
    description: StrictStr | None = None


class MetadataIn(_Model):
    name: Annotated[StrictStr, Field(pattern=JOB_NAME)]
    workspace_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] = "0"
    description: Annotated[StrictStr, Field(max_length=256)] = ""
    annotations: dict[str, str] | None = None
    training_experiment_reference: ExperimentRefIn | None = None


class ResourceIn(_Model):
    flavor_id: StrictStr | None = None
    node_count: Annotated[StrictInt, Field(ge=1)] = 1
    pool_id: StrictStr | None = None
    pool_group_id: StrictStr | None = None
    main_container_customized_flavor: dict[str, Any] | None = None


class AutoStopIn(_Model):
    time_unit: Literal["HOURS"] = "HOURS"
    duration: Annotated[StrictInt, Field(ge=1, le=24 * 365)]


class SpecIn(_Model):
    resource: ResourceIn
    volumes: list[dict[str, Any]] | None = None
    log_export_path: dict[str, Any] | None = None
    auto_stop: AutoStopIn | None = None
    retention: dict[str, Any] | None = None
    schedule_policy: dict[str, Any] | None = None
    log_export_config: dict[str, Any] | None = None
    notification: dict[str, Any] | None = None
    custom_metrics: list[dict[str, Any]] | None = None
    output_model: dict[str, Any] | None = None
    asset_model: dict[str, Any] | None = None
    asset_id: StrictStr | None = None
    reserved_time: dict[str, Any] | None = None


class CreateJob(_Model):
    kind: StrictStr = "job"
    metadata: MetadataIn
    algorithm: AlgorithmIn
    tasks: list[dict[str, Any]] | None = None
    spec: SpecIn
    endpoints: dict[str, Any] | None = None
    train_type: StrictStr | None = None
    ftjob_config: dict[str, Any] | None = None


class FilterIn(_Model):
    key: StrictStr
    operator: StrictStr
    value: Annotated[list[StrictStr], Field(max_length=50)]


class JobSearch(_Model):
    offset: Annotated[StrictInt, Field(ge=0, le=1_000_000)] = 0
    limit: Annotated[StrictInt, Field(ge=1, le=50)] = 10
    sort_by: StrictStr = "create_time"
    order: Literal["asc", "desc"] = "desc"
    group_by: StrictStr | None = None
    workspace_id: StrictStr | None = None
    train_type: StrictStr | None = None
    tags: list[dict[str, Any]] | None = None
    host_ips: list[StrictStr] | None = None
    filters: Annotated[list[FilterIn], Field(max_length=20)] = []


class JobAction(_Model):
    action_type: StrictStr


class UpdateJob(_Model):
    description: Annotated[StrictStr, Field(max_length=256)] | None = None
    spec: dict[str, Any] | None = None
    endpoints: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class BatchDeleteItem(_Model):
    kind: StrictStr | None = None
    metadata: dict[str, Any]


class BatchDelete(_Model):
    jobs: Annotated[list[BatchDeleteItem], Field(min_length=1, max_length=100)]
