"""Wire schemas of the workspace family (field names as the SDK's models spell them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from openarts.workspaces.access import AUTH_TYPES

# A workspace on the wire (WorkspaceResponse), in this order.
WORKSPACE_FIELDS = (
    "id",
    "name",
    "description",
    "owner",
    "auth_type",
    "enterprise_project_id",
    "enterprise_project_name",
    "create_time",
    "update_time",
    "status",
    "status_info",
)
NAME_PATTERN = r"^[A-Za-z0-9_\-\u4e00-\u9fff]{4,64}$"


class ListQuery(BaseModel):
    """The list's query string (one model: FastAPI validates it faster than seven parameters)."""

    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    limit: Annotated[int, Field(ge=1, le=1000)] = 1000
    sort_by: Literal["name", "update_time", "status"] = "name"
    order: Literal["asc", "desc"] = "desc"
    name: Annotated[str, Field(max_length=64)] | None = None
    enterprise_project_id: Annotated[str, Field(max_length=64)] | None = None
    filter_accessible: bool = False


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Grant(_Strict):
    user_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    user_name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    user_type: Literal["IAM", "FEDERATE", "AGENCY"] = "IAM"


def _auth_type(value: str) -> str:
    upper = value.upper()
    if upper not in AUTH_TYPES:
        raise ValueError(f"must be one of {', '.join(AUTH_TYPES)}")
    return upper


class CreateWorkspace(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    description: Annotated[str, Field(max_length=256)] = ""
    auth_type: str = "PUBLIC"
    grants: Annotated[list[Grant], Field(max_length=500)] = []
    enterprise_project_id: Annotated[str, Field(min_length=1, max_length=64)] = "0"

    @field_validator("auth_type")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return _auth_type(value)


class UpdateWorkspace(_Strict):
    name: Annotated[str, Field(pattern=NAME_PATTERN)] | None = None
    description: Annotated[str, Field(max_length=256)] | None = None
    auth_type: str | None = None
    grants: Annotated[list[Grant], Field(max_length=500)] | None = None

    @field_validator("auth_type")
    @classmethod
    def _normalise(cls, value: str | None) -> str | None:
        return None if value is None else _auth_type(value)


class QuotaChange(_Strict):
    resource: Annotated[str, Field(min_length=1, max_length=64)]
    quota: StrictInt


class UpdateQuotas(_Strict):
    quotas: Annotated[list[QuotaChange], Field(min_length=1, max_length=100)]


class AuthRequest(_Strict):
    action_id: Annotated[str, Field(max_length=128)] | None = None
    action: Annotated[str, Field(min_length=1, max_length=128)]
    resource: Annotated[str, Field(max_length=256)] | None = None
    service_attributes: dict[str, str] | None = None


class ValidateAuthorization(_Strict):
    requests: Annotated[list[AuthRequest], Field(min_length=1, max_length=100)]
