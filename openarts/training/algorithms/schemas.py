"""Wire schemas of algorithms, field names as the SDK's ``Algorithm`` request model spells them.

Everything is strict: unknown fields are refused (a misspelt field is never silently dropped) and
values keep their JSON types. A few fields the SDK cannot send but ModelArts' own clients do
(``metadata.tags``, ``access_method`` on data channels) are accepted, and two OpenArts extensions let
an algorithm carry what a job otherwise has to repeat: ``job_config.environments`` and a default
``remote.obs.obs_url`` per data channel (docs/compat.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

ALGORITHM_NAME = r"^[A-Za-z0-9_-]{1,64}$"
# Parameter and channel names become ``--name=value`` arguments: they never start with "-".
ARG_NAME = r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$"
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"
DEFAULT_WORKSPACE = "0"

Text256 = Annotated[StrictStr, Field(max_length=256)]
ObsUrl = Annotated[StrictStr, Field(min_length=1, max_length=1024)]

# ResourceRequirement keys and the values each admits (HWC "CreateAlgorithm", ResourceRequirement).
REQUIREMENT_VALUES: dict[str, tuple[str, ...]] = {
    "flavor_type": ("CPU", "GPU", "Ascend"),
    "device_distributed_mode": ("multiple", "singular"),
    "host_distributed_mode": ("multiple", "singular"),
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Tag(_Strict):
    key: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    value: Annotated[StrictStr, Field(max_length=255)] | None = None


class Metadata(_Strict):
    # The SDK types ``id`` as an integer; the server assigns ids, so a given one is ignored.
    id: StrictInt | StrictStr | None = None
    name: Annotated[StrictStr, Field(pattern=ALGORITHM_NAME)]
    description: Text256 = ""
    workspace_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] = DEFAULT_WORKSPACE
    ai_project: Annotated[StrictStr, Field(max_length=64)] | None = None  # retired by ModelArts: ignored
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None


class MetadataChange(_Strict):
    """On a change every metadata field is optional; the name and the workspace cannot change."""

    id: StrictInt | StrictStr | None = None
    name: Annotated[StrictStr, Field(pattern=ALGORITHM_NAME)] | None = None
    description: Text256 | None = None
    workspace_id: Annotated[StrictStr, Field(min_length=1, max_length=64)] | None = None
    ai_project: Annotated[StrictStr, Field(max_length=64)] | None = None
    tags: Annotated[list[Tag], Field(max_length=20)] | None = None


class Constraint(_Strict):
    type: Annotated[StrictStr, Field(min_length=1, max_length=32)] | None = None
    editable: StrictBool | None = None
    required: StrictBool | None = None
    sensitive: StrictBool | None = None
    valid_type: Annotated[StrictStr, Field(min_length=1, max_length=32)] | None = None
    valid_range: Annotated[list[Annotated[StrictStr, Field(max_length=1024)]], Field(max_length=100)] | None = None


class I18nDescription(_Strict):
    language: Annotated[StrictStr, Field(max_length=16)] | None = None
    description: Text256 | None = None


class Parameter(_Strict):
    name: Annotated[StrictStr, Field(pattern=ARG_NAME)]
    value: Annotated[StrictStr, Field(max_length=8192)] = ""
    description: Text256 = ""
    constraint: Constraint | None = None
    i18n_description: I18nDescription | None = None


class RemoteConstraint(_Strict):
    data_type: Annotated[StrictStr, Field(max_length=64)] | None = None
    attributes: Annotated[list[dict[StrictStr, StrictStr]], Field(max_length=20)] | None = None


class ObsLocation(_Strict):
    obs_url: ObsUrl


class Remote(_Strict):
    obs: ObsLocation


class Output(_Strict):
    name: Annotated[StrictStr, Field(pattern=ARG_NAME)]
    description: Text256 = ""
    access_method: Literal["parameter", "env"] | None = None
    remote: Remote | None = None  # OpenArts: where the data lives unless the job says otherwise


class Input(Output):
    remote_constraints: Annotated[list[RemoteConstraint], Field(max_length=20)] | None = None


class Engine(_Strict):
    engine_id: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    engine_name: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    engine_version: Annotated[StrictStr, Field(min_length=1, max_length=128)] | None = None
    image_url: Annotated[StrictStr, Field(min_length=1, max_length=1024)] | None = None


class JobConfig(_Strict):
    code_dir: ObsUrl | None = None
    boot_file: ObsUrl | None = None
    command: Annotated[StrictStr, Field(min_length=1, max_length=4096)] | None = None
    parameters: Annotated[list[Parameter], Field(max_length=100)] = []
    inputs: Annotated[list[Input], Field(max_length=20)] = []
    outputs: Annotated[list[Output], Field(max_length=20)] = []
    engine: Engine
    parameters_customization: StrictBool = False
    environments: (
        Annotated[
            dict[Annotated[str, Field(pattern=ENV_NAME)], Annotated[StrictStr, Field(max_length=4096)]],
            Field(max_length=100),
        ]
        | None
    ) = None


class ResourceRequirement(_Strict):
    key: Literal["flavor_type", "device_distributed_mode", "host_distributed_mode"]
    values: Annotated[list[StrictStr], Field(min_length=1, max_length=10)]
    operator: Literal["in"] = "in"

    @model_validator(mode="after")
    def _known_values(self) -> ResourceRequirement:
        allowed = REQUIREMENT_VALUES[self.key]
        unknown = [value for value in self.values if value not in allowed]
        if unknown:
            raise ValueError(f"{self.key} admits {', '.join(allowed)}, not {', '.join(unknown)}")
        return self


class RewardAttr(_Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    mode: Literal["max", "min"] = "max"
    regex: Annotated[StrictStr, Field(max_length=256)] | None = None


class SearchParam(_Strict):
    name: Annotated[StrictStr, Field(pattern=ARG_NAME)]
    param_type: Literal["continuous", "discrete"] | None = None
    lower_bound: Annotated[StrictStr, Field(max_length=64)] | None = None
    upper_bound: Annotated[StrictStr, Field(max_length=64)] | None = None
    discrete_points_num: Annotated[StrictStr, Field(max_length=16)] | None = None
    discrete_values: Annotated[list[Annotated[StrictStr, Field(max_length=64)]], Field(max_length=100)] | None = None


class AlgoParam(_Strict):
    key: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    value: Annotated[StrictStr, Field(max_length=256)]
    type: Annotated[StrictStr, Field(min_length=1, max_length=16)] | None = None


class AlgoConfig(_Strict):
    name: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    params: Annotated[list[AlgoParam], Field(max_length=20)] = []


class AutoSearch(_Strict):
    skip_search_params: Annotated[StrictStr, Field(max_length=4096)] | None = None
    reward_attrs: Annotated[list[RewardAttr], Field(max_length=10)] = []
    search_params: Annotated[list[SearchParam], Field(max_length=100)] = []
    algo_configs: Annotated[list[AlgoConfig], Field(max_length=10)] = []

    def is_empty(self) -> bool:
        """Clients clear the policy by sending empty lists (as Terraform does); that means none."""
        return not (self.skip_search_params or self.reward_attrs or self.search_params or self.algo_configs)


class AdvancedConfig(_Strict):
    auto_search: AutoSearch | None = None


class CreateAlgorithm(_Strict):
    metadata: Metadata
    job_config: JobConfig
    resource_requirements: Annotated[list[ResourceRequirement], Field(max_length=10)] | None = None
    advanced_config: AdvancedConfig | None = None


class ChangeAlgorithm(_Strict):
    """A change replaces each section it names and keeps the sections it leaves out."""

    metadata: MetadataChange | None = None
    job_config: JobConfig | None = None
    resource_requirements: Annotated[list[ResourceRequirement], Field(max_length=10)] | None = None
    advanced_config: AdvancedConfig | None = None


class ListQuery(BaseModel):
    """The list's query string: values arrive as text, so this model is not strict."""

    model_config = ConfigDict(extra="ignore")

    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    limit: Annotated[int, Field(ge=1, le=50)] = 10
    sort_by: Annotated[str, Field(max_length=64)] = "create_time"
    order: Literal["asc", "desc"] = "desc"
    group_by: Annotated[str, Field(max_length=64)] | None = None
    searches: Annotated[str, Field(max_length=512)] | None = None
    workspace_id: Annotated[str, Field(min_length=1, max_length=64)] | None = None
