"""Resource tags as Huawei Cloud's tag service (TMS) spells them: the request bodies and the rules for
keys and values, shared by every family that tags its resources (training jobs, notebooks...)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from openarts.core.errors import ApiError

MAX_TAGS = 20
# fullmatch, not match with ``$``: ``$`` also matches before a trailing newline.
_KEY = re.compile(r"[\w .:=+\-@]{1,128}")
_VALUE = re.compile(r"[\w .:=+\-@/]{0,255}")


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: StrictStr
    value: StrictStr | None = None


class TagsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tags: Annotated[list[TagIn], Field(min_length=1, max_length=MAX_TAGS)]


def key_problem(key: str) -> str | None:
    if key != key.strip() or not _KEY.fullmatch(key) or key.startswith("_sys_"):
        return f"tag key {key!r}: 1-128 letters, digits, spaces or _ . : = + - @, no outer spaces, not _sys_*."
    return None


def value_problem(value: str) -> str | None:
    if not _VALUE.fullmatch(value):
        return f"tag value {value!r}: up to 255 letters, digits, spaces or _ . : = + - @ /."
    return None


def wanted_tags(body: TagsIn, invalid: Callable[[str], ApiError]) -> dict[str, str]:
    """The tags to set, key to value, once every key and value is checked; ``invalid`` builds the family's
    400 for the first bad one."""
    wanted: dict[str, str] = {}
    for tag in body.tags:
        problem = key_problem(tag.key) or value_problem(tag.value or "")
        if problem:
            raise invalid(problem)
        wanted[tag.key] = tag.value or ""
    return wanted
