"""Wire schemas of images, field names as the SDK's models spell them (ImageRegRequest, ListImageRequest,
ListImageGroupRequest, UpdateImageGroupRequestBody, DeleteImageRequestBody).

Bodies are strict: unknown fields are refused and values keep their JSON types. Enum values are
accepted in any case and stored upper-case, as ModelArts answers them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator

DEFAULT_WORKSPACE = "0"
MAX_LIMIT = 1000

Arch = Literal["X86_64", "AARCH64"]
Origin = Literal["CUSTOMIZE", "IMAGE_SAVE"]
ServiceType = Literal["COMMON", "INFERENCE", "TRAIN", "DEV", "UNKNOWN"]
Visibility = Literal["PRIVATE", "PUBLIC"]
DevService = Literal["NOTEBOOK", "SSH"]
ResourceCategory = Literal["CPU", "GPU", "ASCEND"]
FlavorType = Literal["ASCEND_SNT9", "ASCEND_SNT9B", "ASCEND_SNT3"]
ImageType = Literal["BUILD_IN", "DEDICATED"]
WorkspaceId = Annotated[str, Field(min_length=1, max_length=64)]


def _upper(value: Any) -> Any:
    """Upper-case a string or each string of a list; anything else is left for validation to refuse."""
    if isinstance(value, str):
        return value.upper()
    if isinstance(value, list):
        return [item.upper() if isinstance(item, str) else item for item in value]
    return value


class _Query(BaseModel):
    """Query strings arrive as text, so these models convert ("10" is 10, "true" is True)."""

    model_config = ConfigDict(extra="ignore")

    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 200
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    name: Annotated[str, Field(max_length=512)] | None = None
    name_fuzzy_match: bool = True
    namespace: Annotated[str, Field(max_length=64)] | None = None
    workspace_id: WorkspaceId = DEFAULT_WORKSPACE


class ListImagesQuery(_Query):
    # ModelArts lists the built-in images unless asked for DEDICATED ones (ListImageRequest.type).
    type: ImageType = "BUILD_IN"
    service_type: ServiceType | None = None
    sort_dir: Literal["ASC", "DESC"] = "DESC"
    sort_key: Annotated[str, Field(max_length=128)] | None = None
    show_name: Annotated[str, Field(max_length=512)] | None = None
    show_tag: Annotated[str, Field(max_length=128)] | None = None

    _upper_enums = field_validator("type", "service_type", "sort_dir", mode="before")(_upper)


class ListGroupsQuery(_Query):
    type: ImageType | None = None  # both kinds unless asked
    swr_instance_id: Annotated[str, Field(max_length=128)] | None = None

    _upper_enums = field_validator("type", mode="before")(_upper)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Tag(_Strict):
    key: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    value: Annotated[StrictStr, Field(max_length=255)] = ""


# The SDK types ImageRegRequest.tags as strings ("key=value" or "key"); ModelArts' console sends objects.
TagEntry = Annotated[StrictStr, Field(min_length=1, max_length=384)] | Tag


class RegisterImage(_Strict):
    # Optional here so that its absence is "required property missing" (6335), not a bad value.
    swr_path: StrictStr | None = None
    arch: Arch | None = None  # None: the architecture the environment reports
    description: Annotated[StrictStr, Field(max_length=512)] = ""
    origin: Origin = "CUSTOMIZE"
    resource_category: Annotated[list[ResourceCategory], Field(min_length=1, max_length=3)] | None = None
    service_type: ServiceType = "UNKNOWN"
    services: Annotated[list[DevService], Field(min_length=1, max_length=2)] | None = None
    visibility: Visibility = "PRIVATE"
    workspace_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] = DEFAULT_WORKSPACE
    flavor_type: FlavorType | None = None
    tags: Annotated[list[TagEntry], Field(max_length=20)] | None = None
    swr_instance_id: Annotated[StrictStr, Field(max_length=128)] | None = None
    read_me: Annotated[StrictStr, Field(max_length=3000)] | None = None

    _upper_enums = field_validator(
        "arch", "origin", "resource_category", "service_type", "services", "visibility", "flavor_type", mode="before"
    )(_upper)


class UpdateGroup(_Strict):
    read_me: Annotated[StrictStr, Field(max_length=30000)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None


class DeleteImage(_Strict):
    # "Also delete the SWR content": OpenArts never deletes the environment itself (docs).
    is_force: StrictBool = False
