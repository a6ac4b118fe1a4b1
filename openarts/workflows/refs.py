"""``$ref/...`` placeholders: finding them in a definition and resolving them for one step.

Four kinds, as ModelArts spells them:
``$ref/parameters/<name>``, ``$ref/data/<name>``, ``$ref/data_requirements/<name>`` and
``$ref/consumptions/<step>/<output>[/<attr>]`` (an upstream step's output: its ``config``, or one
attribute of it). A string that is exactly a placeholder becomes the value itself (a bool stays a bool);
a placeholder inside a longer string is replaced by the value's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

KINDS = ("parameters", "data", "data_requirements", "consumptions")
PREFIX = "$ref/"
_EMBEDDED = re.compile(
    r"\$ref/(?:(?:parameters|data|data_requirements)/[\w.\-]+|consumptions/[\w.\-]+/[\w.\-]+(?:/[\w.\-]+)?)"
)


@dataclass(frozen=True)
class Ref:
    kind: str
    name: str  # the parameter, data, data requirement or (for consumptions) step
    output: str | None = None
    attr: str | None = None

    @property
    def text(self) -> str:
        parts = [self.kind, self.name] + [p for p in (self.output, self.attr) if p is not None]
        return PREFIX + "/".join(parts)


class RefError(ValueError):
    """A placeholder that is malformed; the message names it."""


def parse(text: str) -> Ref | None:
    """The placeholder ``text`` is, or None if it is not one."""
    if not text.startswith(PREFIX):
        return None
    kind, _, rest = text[len(PREFIX) :].partition("/")
    if kind not in KINDS or not rest:
        raise RefError(f"{text} is not a placeholder: use $ref/{{{'|'.join(KINDS)}}}/<name>")
    if kind != "consumptions":
        return Ref(kind, rest)
    parts = rest.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise RefError(f"{text}: a consumption is $ref/consumptions/<step>/<output>[/<attribute>]")
    return Ref(kind, parts[0], parts[1], parts[2] if len(parts) == 3 else None)


def find(obj: Any) -> Iterator[Ref]:
    """Every placeholder anywhere in ``obj`` (nested lists and dicts, keys excluded)."""
    if isinstance(obj, str):
        whole = parse(obj)
        if whole is not None:
            yield whole
        else:
            for match in _EMBEDDED.finditer(obj):
                found = parse(match.group(0))
                if found is not None:
                    yield found
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from find(value)
    elif isinstance(obj, list):
        for value in obj:
            yield from find(value)


class Missing(Exception):  # noqa: N818 - reads as refs.Missing
    """A placeholder whose value is not there yet (a ``delay`` parameter or data requirement)."""

    def __init__(self, ref: Ref) -> None:
        super().__init__(ref.text)
        self.ref = ref


@dataclass
class Scope:
    """The values placeholders resolve to in one run; a name absent from ``ready`` is missing."""

    parameters: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    data_requirements: dict[str, Any] = field(default_factory=dict)
    consumptions: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # step -> output -> config

    def value(self, ref: Ref) -> Any:
        if ref.kind == "consumptions":
            config = self.consumptions.get(ref.name, {}).get(ref.output or "")
            if config is None:
                raise Missing(ref)
            if ref.attr is None:
                return config
            if ref.attr not in config:
                raise Missing(ref)
            return config[ref.attr]
        table: dict[str, Any] = getattr(self, ref.kind)
        if ref.name not in table:
            raise Missing(ref)
        return table[ref.name]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def resolve(obj: Any, scope: Scope) -> Any:
    """``obj`` with every placeholder replaced; raises :class:`Missing` for the first absent value."""
    if isinstance(obj, str):
        whole = parse(obj)
        if whole is not None:
            return scope.value(whole)
        return _EMBEDDED.sub(lambda m: _text(resolve(m.group(0), scope)), obj)
    if isinstance(obj, dict):
        return {key: resolve(value, scope) for key, value in obj.items()}
    if isinstance(obj, list):
        return [resolve(value, scope) for value in obj]
    return obj
