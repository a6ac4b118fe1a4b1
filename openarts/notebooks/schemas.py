"""Request bodies and queries of the notebook routes, as the SDK sends them (reference C.2, C.5, C.7).

Types are strict where ModelArts is strict; the rules that need more than a type (ranges, character
sets, which category goes with which field) live in ``service.py`` so every failure carries its 63xx
code instead of a generic validation error.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VolumeIn(_Body):
    category: StrictStr
    ownership: StrictStr | None = None
    capacity: StrictInt | None = None
    uri: StrictStr | None = None
    id: StrictStr | None = None
    mount_path: StrictStr | None = None
    read_only: StrictBool | None = None
    dew_secret_name: StrictStr | None = None


class EndpointIn(_Body):
    service: StrictStr
    key_pair_names: list[StrictStr] | None = None
    allowed_access_ips: list[StrictStr] | None = None


class LeaseIn(_Body):
    duration: StrictInt | None = None
    type: StrictStr | None = None


class CustomSpecIn(_Body):
    gpu: float | None = None
    cpu: float | None = None
    memory: float | None = None
    gpu_type: StrictStr | None = None
    arch: StrictStr | None = None
    category: StrictStr | None = None
    resource_flavor: StrictStr | None = None


class CreateNotebook(_Body):
    name: StrictStr
    flavor: StrictStr | None = None
    image_id: StrictStr
    volume: VolumeIn
    description: StrictStr = ""
    feature: StrictStr = "NOTEBOOK"
    custom_spec: CustomSpecIn | None = None
    pool_id: StrictStr | None = None
    workspace_id: StrictStr = "0"
    endpoints: list[EndpointIn] | None = None
    lease: LeaseIn | None = None
    duration: StrictInt | None = None
    data_volumes: Annotated[list[VolumeIn], Field(max_length=10)] | None = None
    # Echoed back as given: they describe a cloud host (hooks, placement, VPC) that one machine has not.
    hooks: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    run_user: dict[str, Any] | None = None
    user_vpc: dict[str, Any] | None = None
    public_network_config: dict[str, Any] | None = None


class UpdateNotebook(_Body):
    name: StrictStr | None = None
    description: StrictStr | None = None
    flavor: StrictStr | None = None
    custom_spec: CustomSpecIn | None = None
    image_id: StrictStr | None = None
    storage_new_size: StrictInt | None = None
    endpoints: list[EndpointIn] | None = None
    data_volumes: Annotated[list[VolumeIn], Field(max_length=10)] | None = None
    hooks: dict[str, Any] | None = None
    affinity: dict[str, Any] | None = None
    dew_secret_name: StrictStr | None = None
    public_network_config: dict[str, Any] | None = None


class StorageIn(_Body):
    """``DataVolumesReq``: an object-store folder to show in the work directory."""

    category: StrictStr
    uri: StrictStr
    mount_path: StrictStr
    efs_id: StrictStr | None = None


class ListQuery(BaseModel):
    """The query of ``GET /notebooks`` and ``/notebooks/all``; numbers arrive as strings."""

    model_config = ConfigDict(extra="ignore")

    feature: str | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    name: str | None = None
    pool_id: str | None = None
    owner: str | None = None
    sort_dir: str = "DESC"
    sort_key: str | None = None
    status: str | None = None
    workspace_id: str | None = None
    flavor: str | None = None
    image_id: str | None = None
    id: str | None = None
    billing: str | None = None
    tags: str | None = None
    swr_path: str | None = None
    pool_name: str | None = None
    description: str | None = None
    ip: str | None = None
    username: str | None = None


class PageQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Field(ge=1, le=1000)] = 10
    offset: Annotated[int, Field(ge=0)] = 0
    sort_key: str | None = None
    sort_dir: str = "ASC"


class FlavorQuery(PageQuery):
    category: str | None = None
    type: str | None = None
    flavor_type: str | None = None
    feature: str | None = None


class StartQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    duration: int | None = None
    type: str | None = None


class WorkspaceQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    workspace_id: str | None = None
