"""Wire schemas of services: what a client may send. Numbers sent as strings ("100") are accepted."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", protected_namespaces=())


class CustomSpec(_Loose):
    cpu: float | None = None
    memory: int | None = None
    gpu_p4: float | None = None
    gpu: float | None = None
    ascend_a310: int | None = None


class ConfigIn(_Loose):
    model_id: str
    weight: int | None = None
    specification: str
    custom_spec: CustomSpec | None = None
    instance_count: int = 1
    envs: dict[str, str] | None = None
    cluster_id: str | None = None
    pool_name: str | None = None
    additional_properties: dict[str, Any] | None = None
    deploy_timeout_in_seconds: int | None = None


class ScheduleIn(_Loose):
    type: str
    time_unit: str
    duration: int


class DeployService(_Loose):
    service_name: str
    description: str | None = None
    infer_type: str
    workspace_id: str = "0"
    vpc_id: str | None = None
    subnet_network_id: str | None = None
    security_group_id: str | None = None
    cluster_id: str | None = None
    pool_name: str | None = None
    config: list[ConfigIn]
    schedule: list[ScheduleIn] | None = None
    additional_properties: dict[str, Any] | None = None
    load_balancer_policy: str | None = None
    priority: int | None = None


class UpdateService(_Loose):
    description: str | None = None
    status: str | None = None
    config: list[ConfigIn] | None = None
    schedule: list[ScheduleIn] | None = None
    additional_properties: dict[str, Any] | None = None


class ListServicesQuery(_Loose):
    service_id: str | None = None
    service_name: str | None = None
    model_id: str | None = None
    cluster_id: str | None = None
    workspace_id: str = "0"
    infer_type: str | None = None
    status: str | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=1000)
    sort_by: str = "publish_at"
    order: str = "desc"


class EventsQuery(_Loose):
    event_type: str | None = None
    event_info: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    offset: int = Field(default=0, ge=0)
    limit: int = Field(default=1000, ge=1, le=1000)
    sort_by: str = "occur_time"
    order: str = "desc"


class LogsQuery(_Loose):
    update_time: int | None = None


class SpecificationsQuery(_Loose):
    is_personal_cluster: bool = False
    infer_type: str = "real-time"
