"""Wire schemas of training experiments (field names as the SDK's models spell them).

ModelArts limits names to 64 and descriptions to 256 characters, "without special characters": names
take letters (also CJK), digits, ``_`` and ``-``; descriptions refuse markup and quoting characters
and control characters (docs/compat.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

EXPERIMENT_NAME = r"^[A-Za-z0-9_\-\u4e00-\u9fff]{1,64}$"
DESCRIPTION = r"^[^<>&'\"\\\x00-\x1f\x7f]*$"
DEFAULT_WORKSPACE = "0"

Name = Annotated[StrictStr, Field(pattern=EXPERIMENT_NAME)]
Description = Annotated[StrictStr, Field(max_length=256, pattern=DESCRIPTION)]
WorkspaceId = Annotated[StrictStr, Field(min_length=1, max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Metadata(_Strict):
    name: Name
    description: Description = ""
    workspace_id: WorkspaceId = DEFAULT_WORKSPACE


class CreateExperiment(_Strict):
    metadata: Metadata


class ChangeExperiment(_Strict):
    name: Name | None = None
    description: Description | None = None


class ListQuery(BaseModel):
    """The list's query string: values arrive as text, so this model is not strict."""

    workspace_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    sort_by: Annotated[str, Field(max_length=64)] = "create_time"
    order: Literal["asc", "desc"] = "desc"


class NameQuery(BaseModel):
    workspace_id: Annotated[str, Field(min_length=1, max_length=64)] = DEFAULT_WORKSPACE
    experiment_name: Annotated[str, Field(pattern=EXPERIMENT_NAME)]
