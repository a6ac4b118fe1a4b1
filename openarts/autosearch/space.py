"""The search space and the search metrics of a hyperparameter search, parsed from the wire.

An ``auto_search`` policy carries ``search_params`` (the space) and ``reward_attrs`` (how each trial's
reward is read from its log). Everything on the wire is a string, so this module is where strings become
numbers, once, with a 400 that names the parameter and the field when they do not. The result is plain
frozen data that the search algorithms (``algorithms.py``) and the controller share; nothing here does
I/O or touches the database.

Error codes. ModelArts' catalogue has three codes for a bad search definition, and they are used as
their names say:

* ``ModelArts.2825`` ParamTypeError: a field of the wrong *type*: ``param_type`` not ``continuous`` or
  ``discrete``, a bound or a point count that is not a number, a field that is not a string/list.
* ``ModelArts.2826`` SearchParamsError: a well-typed but wrong space: missing fields, bounds the wrong
  way round, too few points, duplicate names or values, too many parameters.
* ``ModelArts.2824`` SearchIndicatorsError: anything wrong with ``reward_attrs``.

Reading rewards. A reward is the LAST match of the attribute's regex in the trial's log; only the last
1 Mi characters are scanned, since metrics are printed as training goes and logs can be huge. Patterns
are compiled with ``regex.MULTILINE``, so that ``^`` and ``$`` anchor at log lines, and with the
``regex`` package rather than the standard ``re``, for one reason: ``re`` cannot be stopped. A user
regex such as ``\\d*\\d*\\d*x`` takes ``re`` 26 s on one 512-character line of digits (about 7 minutes on
1024), holding the GIL all along, so one user's log could freeze the whole server. ``regex`` accepts
the same syntax, releases the GIL while matching (``concurrent=True``) and takes a ``timeout``: the
scan gives up after :data:`REWARD_SCAN_TIMEOUT_S` and reports no reward.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import regex  # type: ignore[import-untyped]

from openarts.core.errors import ApiError

MAX_PARAMS = 20
MAX_POINTS = 10_000
"""Discrete parameters list at most this many points: a search runs tens of trials, not millions."""
MAX_VALUE_CHARS = 256
MAX_REWARD_ATTRS = 10
MAX_REGEX_CHARS = 512
REWARD_SCAN_CHARS = 1 << 20
"""Only the last 1 Mi characters of a log are searched for a reward: the newest metrics are at the end."""
REWARD_SCAN_TIMEOUT_S = 1.0

_NAME = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.\-]{0,63}")
# Plain decimal numbers only: Python's float() also takes "nan", "inf", "1_000" and "infinity", none
# of which is a usable bound or point.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)

RESERVED_REWARD_NAMES = frozenset(
    {
        "",
        "done",
        "pid",
        "config",
        "trial_id",
        "training_iteration",
        "time_total_s",
        "worker_index",
        "reward_attr",
        "status",
        "best_reward",
        "trial_index",
    }
)
"""Column names of the trial table (``autosearch-trials``): a reward named like one would hide it."""


# --- errors --------------------------------------------------------------------------------------


def search_params_error(message: str) -> ApiError:
    return ApiError(400, "ModelArts.2826", f"SearchParamsError: {message}")


def param_type_error(message: str) -> ApiError:
    return ApiError(400, "ModelArts.2825", f"ParamTypeError: {message}")


def indicators_error(message: str) -> ApiError:
    return ApiError(400, "ModelArts.2824", f"SearchIndicatorsError: {message}")


# --- the space ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Param:
    """One dimension of the space.

    ``continuous``: any float in ``[low, high]``. ``discrete``: one of ``values``, in the order given;
    numeric points are floats (``"32"`` becomes ``32.0``), anything else stays a string.
    """

    name: str
    kind: Literal["continuous", "discrete"]
    low: float | None = None
    high: float | None = None
    values: tuple[float | str, ...] = ()

    def index_of(self, value: object) -> int | None:
        """The position of ``value`` among a discrete parameter's points, or None.

        Numbers compare numerically with a relative tolerance of 1e-9, so that a point that went
        through JSON or a database float column is still recognised; strings compare exactly.
        """
        if self.kind != "discrete":
            return None
        number = _as_number(value)
        for i, point in enumerate(self.values):
            if isinstance(point, str):
                if isinstance(value, str) and value == point:
                    return i
            elif number is not None and math.isclose(number, point, rel_tol=1e-9, abs_tol=1e-12):
                return i
        return None

    def contains(self, value: object) -> bool:
        """Whether ``value`` is a point of this parameter (bounds inclusive for continuous ones)."""
        if self.kind == "continuous":
            number = _as_number(value)
            assert self.low is not None and self.high is not None
            return number is not None and self.low <= number <= self.high
        return self.index_of(value) is not None


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def random_config(self, rng: np.random.Generator) -> dict[str, float | str]:
        """A uniformly random point: the random-search baseline and every algorithm's cold start."""
        config: dict[str, float | str] = {}
        for p in self.params:
            if p.kind == "continuous":
                assert p.low is not None and p.high is not None
                config[p.name] = float(rng.uniform(p.low, p.high))
            else:
                config[p.name] = p.values[int(rng.integers(len(p.values)))]
        return config

    def contains(self, config: Mapping[str, object]) -> bool:
        """Whether ``config`` names exactly this space's parameters, each with a value inside it.

        Used to drop recorded trials that no longer fit (the space of a search cannot change through
        the API, but a row written by an older version must not crash the algorithm).
        """
        if set(config) != set(self.names):
            return False
        return all(p.contains(config[p.name]) for p in self.params)


def _as_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _wire_text(item: Mapping[str, Any], field: str, where: str) -> str | None:
    """A field as text: None when absent or empty. Numbers are tolerated (sent by hand-written JSON)."""
    value = item.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise param_type_error(f"{where}: {field} must be a string, not {type(value).__name__}.")
    text = str(value).strip()
    return text or None


def _wire_number(item: Mapping[str, Any], field: str, where: str) -> float | None:
    text = _wire_text(item, field, where)
    if text is None:
        return None
    if not _NUMBER.fullmatch(text):
        raise param_type_error(f"{where}: {field} {text[:40]!r} is not a number.")
    number = float(text)
    if not math.isfinite(number):
        raise param_type_error(f"{where}: {field} {text[:40]!r} is out of range.")
    return number


def _point(text: str) -> float | str:
    """A discrete point: a float when the string is a plain decimal number, the string otherwise."""
    if _NUMBER.fullmatch(text):
        number = float(text)
        if math.isfinite(number):
            return number
    return text


def _parse_param(item: object, position: int) -> Param:
    if not isinstance(item, Mapping):
        raise param_type_error(f"search_params[{position}] must be an object.")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise search_params_error(f"search_params[{position}]: name is required.")
    if not _NAME.fullmatch(name):
        raise search_params_error(
            f"search_params[{position}]: name {name[:70]!r} must be 1 to 64 letters, digits, '_', '.' "
            "or '-', not starting with '-'."
        )
    where = f"search param {name!r}"
    param_type = item.get("param_type")
    if param_type not in ("continuous", "discrete"):
        raise param_type_error(f"{where}: param_type must be 'continuous' or 'discrete', not {param_type!r}.")
    low = _wire_number(item, "lower_bound", where)
    high = _wire_number(item, "upper_bound", where)
    points_text = _wire_text(item, "discrete_points_num", where)
    raw_values = item.get("discrete_values")
    if raw_values is not None and not isinstance(raw_values, list):
        raise param_type_error(f"{where}: discrete_values must be a list of strings.")
    values = raw_values or []

    if param_type == "continuous":
        if values:
            raise search_params_error(f"{where}: discrete_values is only for discrete parameters.")
        if points_text is not None:
            raise search_params_error(f"{where}: discrete_points_num is only for discrete parameters.")
        if low is None or high is None:
            missing = "lower_bound" if low is None else "upper_bound"
            raise search_params_error(f"{where}: {missing} is required for a continuous parameter.")
        if not low < high:
            raise search_params_error(f"{where}: lower_bound {low:g} must be less than upper_bound {high:g}.")
        return Param(name, "continuous", low=low, high=high)

    if values:
        if low is not None or high is not None or points_text is not None:
            raise search_params_error(
                f"{where}: give either discrete_values or lower_bound, upper_bound and discrete_points_num."
            )
        if len(values) > MAX_POINTS:
            raise search_params_error(f"{where}: discrete_values has more than {MAX_POINTS} values.")
        points: list[float | str] = []
        for i, value in enumerate(values):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise param_type_error(f"{where}: discrete_values[{i}] must be a string.")
            text = str(value).strip()
            if not text:
                raise search_params_error(f"{where}: discrete_values[{i}] is empty.")
            if len(text) > MAX_VALUE_CHARS:
                raise search_params_error(f"{where}: discrete_values[{i}] is longer than {MAX_VALUE_CHARS}.")
            point = _point(text)
            if point in points:
                raise search_params_error(f"{where}: discrete_values has {text[:40]!r} twice.")
            points.append(point)
        return Param(name, "discrete", values=tuple(points))

    if low is None or high is None or points_text is None:
        missing = "lower_bound" if low is None else "upper_bound" if high is None else "discrete_points_num"
        raise search_params_error(f"{where}: {missing} is required for a discrete parameter without discrete_values.")
    if not re.fullmatch(r"[+]?\d+", points_text):
        raise param_type_error(f"{where}: discrete_points_num {points_text[:40]!r} is not an integer.")
    count = int(points_text)
    if not 2 <= count <= MAX_POINTS:
        raise search_params_error(f"{where}: discrete_points_num must be between 2 and {MAX_POINTS}, not {count}.")
    if not low < high:
        raise search_params_error(f"{where}: lower_bound {low:g} must be less than upper_bound {high:g}.")
    grid = np.linspace(low, high, count)
    return Param(name, "discrete", values=tuple(float(v) for v in grid))


def parse_space(search_params: list[dict[str, Any]]) -> SearchSpace:
    """The ``search_params`` of an ``auto_search`` policy as a :class:`SearchSpace`, or a 400.

    Continuous parameters need ``lower_bound < upper_bound``. Discrete ones take either
    ``discrete_values`` (strings; plain decimal numbers become floats) or ``lower_bound``,
    ``upper_bound`` and ``discrete_points_num`` (at least 2), which give evenly spaced points including
    both bounds. Giving both forms is refused rather than guessed at.
    """
    if not isinstance(search_params, list) or not search_params:
        raise search_params_error("search_params must list at least one parameter.")
    if len(search_params) > MAX_PARAMS:
        raise search_params_error(f"search_params lists {len(search_params)} parameters; at most {MAX_PARAMS}.")
    params = [_parse_param(item, i) for i, item in enumerate(search_params)]
    seen: set[str] = set()
    for p in params:
        if p.name in seen:
            raise search_params_error(f"search param {p.name!r} is defined twice.")
        seen.add(p.name)
    return SearchSpace(tuple(params))


# --- the search metrics --------------------------------------------------------------------------


@dataclass(frozen=True)
class RewardAttr:
    """A search metric: ``regex`` finds it in a trial's log, ``mode`` says whether more is better.

    The value is the pattern's first capturing group, or the whole match when it has no group.
    """

    name: str
    mode: Literal["max", "min"]
    regex: str


def _compile(pattern: str) -> Any:
    """The compiled reward pattern: MULTILINE, so that ``^`` and ``$`` anchor at log lines."""
    return regex.compile(pattern, regex.MULTILINE)


def parse_reward_attrs(reward_attrs: list[dict[str, Any]]) -> list[RewardAttr]:
    """The ``reward_attrs`` of an ``auto_search`` policy, or a 400 ``ModelArts.2824``.

    1 to 10 attributes with unique names (which become trial-table columns, so the table's own column
    names are refused), ``mode`` max or min (max when absent), and a regex of at most 512 characters
    that compiles.
    """
    if not isinstance(reward_attrs, list) or not reward_attrs:
        raise indicators_error("reward_attrs must list at least one search metric.")
    if len(reward_attrs) > MAX_REWARD_ATTRS:
        raise indicators_error(f"reward_attrs lists {len(reward_attrs)} metrics; at most {MAX_REWARD_ATTRS}.")
    attrs: list[RewardAttr] = []
    for i, item in enumerate(reward_attrs):
        if not isinstance(item, Mapping):
            raise indicators_error(f"reward_attrs[{i}] must be an object.")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise indicators_error(f"reward_attrs[{i}]: name is required.")
        if not _NAME.fullmatch(name):
            raise indicators_error(
                f"reward_attrs[{i}]: name {name[:70]!r} must be 1 to 64 letters, digits, '_', '.' or '-', "
                "not starting with '-'."
            )
        if name in RESERVED_REWARD_NAMES:
            raise indicators_error(f"reward attr {name!r}: the name is a column of the trial table.")
        if any(a.name == name for a in attrs):
            raise indicators_error(f"reward attr {name!r} is defined twice.")
        raw_mode = item.get("mode")
        mode: Literal["max", "min"]
        if raw_mode is None or raw_mode == "" or raw_mode == "max":
            mode = "max"
        elif raw_mode == "min":
            mode = "min"
        else:
            raise indicators_error(f"reward attr {name!r}: mode must be 'max' or 'min', not {raw_mode!r}.")
        pattern = item.get("regex")
        if not isinstance(pattern, str) or not pattern:
            raise indicators_error(f"reward attr {name!r}: regex is required.")
        if len(pattern) > MAX_REGEX_CHARS:
            raise indicators_error(f"reward attr {name!r}: regex is longer than {MAX_REGEX_CHARS} characters.")
        try:
            _compile(pattern)
        except (regex.error, ValueError, OverflowError, RecursionError) as exc:
            raise indicators_error(f"reward attr {name!r}: regex does not compile: {exc}.") from None
        attrs.append(RewardAttr(name, mode, pattern))
    return attrs


def _matched_values(attr: RewardAttr, log_text: str, timeout_s: float) -> tuple[list[str | None], bool]:
    """The text of each match of ``attr.regex`` (its first group, or the whole match), oldest first, and
    whether the scan ran out of time.

    Only the last :data:`REWARD_SCAN_CHARS` characters are scanned, and the scan stops at ``timeout_s``:
    a pathological pattern must not hold the server (``regex`` matches without the GIL and can be
    interrupted, which ``re`` cannot).
    """
    text = log_text[-REWARD_SCAN_CHARS:]
    pattern = _compile(attr.regex)
    deadline = time.monotonic() + timeout_s
    found: list[str | None] = []
    pos = 0
    try:
        while pos <= len(text):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return found, True
            match = pattern.search(text, pos, timeout=remaining, concurrent=True)
            if match is None:
                break
            pos = match.end() if match.end() > match.start() else match.end() + 1
            value = match.group(1) if pattern.groups else match.group(0)
            found.append(value if isinstance(value, str) else None)
    except TimeoutError:
        return found, True
    return found, False


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def reward_series(attr: RewardAttr, log_text: str, *, timeout_s: float = REWARD_SCAN_TIMEOUT_S) -> list[float]:
    """Every value of ``attr`` in a trial's log, oldest first: the matches that are finite numbers (what
    was found before a timeout counts)."""
    found, _ = _matched_values(attr, log_text, timeout_s)
    return [number for value in found if (number := _number(value)) is not None]


def reward_from_log(attr: RewardAttr, log_text: str, *, timeout_s: float = REWARD_SCAN_TIMEOUT_S) -> float | None:
    """The reward in a trial's log: the LAST match of ``attr.regex``, as a float.

    None when nothing matches, when the last match is not a finite number (``acc=nan``), or when the
    scan runs past ``timeout_s`` (a pathological pattern; the caller reports "no metric matched").
    """
    found, timed_out = _matched_values(attr, log_text, timeout_s)
    if timed_out or not found:
        return None
    return _number(found[-1])


def reward_to_loss(attr: RewardAttr, reward: float) -> float:
    """The loss the search algorithms minimise for a reward: ``-reward`` for max, ``reward`` for min."""
    return -reward if attr.mode == "max" else reward
