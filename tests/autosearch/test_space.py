"""The search space and the search metrics: wire parsing, errors, and reading rewards from logs.

Pure functions, no server: each bad input is checked for its ModelArts code and for a message that
names the parameter and the field.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openarts.autosearch.space import (
    REWARD_SCAN_CHARS,
    Param,
    RewardAttr,
    SearchSpace,
    parse_reward_attrs,
    parse_space,
    reward_from_log,
    reward_to_loss,
)
from openarts.core.errors import ApiError

SEARCH_PARAMS = "ModelArts.2826"
PARAM_TYPE = "ModelArts.2825"
INDICATORS = "ModelArts.2824"


def cont(name: str = "lr", low: Any = "0.001", high: Any = "0.1", **extra: Any) -> dict[str, Any]:
    return {"name": name, "param_type": "continuous", "lower_bound": low, "upper_bound": high, **extra}


def disc(name: str = "bs", **fields: Any) -> dict[str, Any]:
    return {"name": name, "param_type": "discrete", **fields}


# --- parse_space: good inputs ------------------------------------------------------------------------


def test_continuous_param() -> None:
    space = parse_space([cont()])
    assert space == SearchSpace((Param("lr", "continuous", low=0.001, high=0.1),))
    assert space.names == ("lr",)


def test_discrete_values_numbers_become_floats_and_words_stay_strings() -> None:
    space = parse_space([disc(discrete_values=["32", " 64 ", "1e2", "adam", "nan", "-0.5"])])
    assert space.params[0].values == (32.0, 64.0, 100.0, "adam", "nan", -0.5)


def test_discrete_points_are_evenly_spaced_including_both_bounds() -> None:
    space = parse_space([disc(lower_bound="0", upper_bound="1", discrete_points_num="5")])
    assert space.params[0].values == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_numbers_on_the_wire_are_tolerated_and_empty_fields_ignored() -> None:
    space = parse_space(
        [
            cont("a", 1, 2.5, discrete_values=[], discrete_points_num=""),
            disc("b", discrete_values=[1, "2"], lower_bound=None, upper_bound=""),
        ]
    )
    assert space.params[0] == Param("a", "continuous", low=1.0, high=2.5)
    assert space.params[1].values == (1.0, 2.0)


def test_twenty_params_with_every_allowed_name_character() -> None:
    names = ["a", "A.b", "x_1", "y-2", "_z", ".dot", "9", "n" * 64] + [f"p{i}" for i in range(12)]
    space = parse_space([cont(name) for name in names])
    assert space.names == tuple(names)


# --- parse_space: bad inputs ------------------------------------------------------------------------

BAD_SPACES: list[tuple[str, Any, str, str]] = [
    ("not a list", {"name": "lr"}, SEARCH_PARAMS, "at least one"),
    ("empty", [], SEARCH_PARAMS, "at least one"),
    ("21 params", [cont(f"p{i}") for i in range(21)], SEARCH_PARAMS, "at most 20"),
    ("item not an object", ["lr"], PARAM_TYPE, "search_params[0]"),
    ("no name", [{"param_type": "continuous", "lower_bound": "0", "upper_bound": "1"}], SEARCH_PARAMS, "name"),
    ("name starts with -", [cont("-lr")], SEARCH_PARAMS, "'-lr'"),
    ("name with a space", [cont("learning rate")], SEARCH_PARAMS, "'learning rate'"),
    ("name with =", [cont("a=b")], SEARCH_PARAMS, "'a=b'"),
    ("name too long", [cont("n" * 65)], SEARCH_PARAMS, "64"),
    ("duplicate names", [cont("lr"), cont("lr")], SEARCH_PARAMS, "'lr' is defined twice"),
    ("param_type missing", [{"name": "lr"}], PARAM_TYPE, "param_type"),
    ("param_type unknown", [{**cont(), "param_type": "integer"}], PARAM_TYPE, "'integer'"),
    ("lower_bound not a number", [cont(low="abc")], PARAM_TYPE, "'lr': lower_bound"),
    ("upper_bound inf", [cont(high="inf")], PARAM_TYPE, "'lr': upper_bound"),
    ("upper_bound nan", [cont(high="nan")], PARAM_TYPE, "'lr': upper_bound"),
    ("bound overflows", [cont(high="1e999")], PARAM_TYPE, "'lr': upper_bound"),
    ("bound a boolean", [cont(high=True)], PARAM_TYPE, "'lr': upper_bound"),
    ("bound a list", [cont(high=["1"])], PARAM_TYPE, "'lr': upper_bound"),
    ("continuous without lower", [cont(low=None)], SEARCH_PARAMS, "'lr': lower_bound is required"),
    ("continuous without upper", [cont(high="")], SEARCH_PARAMS, "'lr': upper_bound is required"),
    ("continuous low == high", [cont(low="1", high="1")], SEARCH_PARAMS, "'lr': lower_bound"),
    ("continuous low > high", [cont(low="2", high="1")], SEARCH_PARAMS, "'lr': lower_bound"),
    ("continuous with values", [cont(discrete_values=["1"])], SEARCH_PARAMS, "'lr': discrete_values"),
    ("continuous with points", [cont(discrete_points_num="3")], SEARCH_PARAMS, "'lr': discrete_points_num"),
    ("discrete with nothing", [disc()], SEARCH_PARAMS, "'bs': lower_bound is required"),
    ("discrete without num", [disc(lower_bound="0", upper_bound="1")], SEARCH_PARAMS, "discrete_points_num"),
    ("points_num 1", [disc(lower_bound="0", upper_bound="1", discrete_points_num="1")], SEARCH_PARAMS, "'bs'"),
    ("points_num huge", [disc(lower_bound="0", upper_bound="1", discrete_points_num="10001")], SEARCH_PARAMS, "'bs'"),
    ("points_num float", [disc(lower_bound="0", upper_bound="1", discrete_points_num="2.5")], PARAM_TYPE, "'bs'"),
    ("points_num word", [disc(lower_bound="0", upper_bound="1", discrete_points_num="ten")], PARAM_TYPE, "'bs'"),
    ("points low > high", [disc(lower_bound="2", upper_bound="1", discrete_points_num="3")], SEARCH_PARAMS, "'bs'"),
    ("values and bounds", [disc(discrete_values=["1"], lower_bound="0")], SEARCH_PARAMS, "'bs': give either"),
    ("values not a list", [disc(discrete_values="1,2")], PARAM_TYPE, "'bs': discrete_values"),
    ("value an object", [disc(discrete_values=[{"v": 1}])], PARAM_TYPE, "'bs': discrete_values[0]"),
    ("value empty", [disc(discrete_values=["1", " "])], SEARCH_PARAMS, "'bs': discrete_values[1]"),
    ("value too long", [disc(discrete_values=["x" * 257])], SEARCH_PARAMS, "'bs': discrete_values[0]"),
    ("duplicate values", [disc(discrete_values=["1", "1.0"])], SEARCH_PARAMS, "'bs': discrete_values has"),
    ("too many values", [disc(discrete_values=[str(i) for i in range(10001)])], SEARCH_PARAMS, "'bs'"),
]


@pytest.mark.parametrize(("wire", "code", "needle"), [c[1:] for c in BAD_SPACES], ids=[c[0] for c in BAD_SPACES])
def test_bad_space_is_refused(wire: Any, code: str, needle: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_space(wire)
    assert caught.value.status == 400
    assert caught.value.code == code
    prefix = "SearchParamsError: " if code == SEARCH_PARAMS else "ParamTypeError: "
    assert caught.value.message.startswith(prefix)
    assert needle in caught.value.message


# --- SearchSpace ---------------------------------------------------------------------------------------

MIXED = parse_space(
    [
        cont("lr", "-1", "1"),
        disc("bs", discrete_values=["16", "32", "64"]),
        disc("opt", discrete_values=["adam", "sgd"]),
    ]
)


def test_random_config_lies_in_the_space_and_is_seeded() -> None:
    configs = [MIXED.random_config(np.random.default_rng(seed)) for seed in range(200)]
    assert all(MIXED.contains(c) for c in configs)
    assert {c["bs"] for c in configs} == {16.0, 32.0, 64.0}
    assert {c["opt"] for c in configs} == {"adam", "sgd"}
    assert all(type(c["lr"]) is float for c in configs)
    assert MIXED.random_config(np.random.default_rng(7)) == MIXED.random_config(np.random.default_rng(7))


@pytest.mark.parametrize(
    ("config", "inside"),
    [
        ({"lr": 0.5, "bs": 32.0, "opt": "sgd"}, True),
        ({"lr": 1, "bs": 32, "opt": "sgd"}, True),  # ints as from JSON
        ({"lr": -1.0, "bs": 64.0 * (1 + 1e-12), "opt": "adam"}, True),  # a float that went through a column
        ({"lr": 1.5, "bs": 32.0, "opt": "sgd"}, False),
        ({"lr": float("nan"), "bs": 32.0, "opt": "sgd"}, False),
        ({"lr": "0.5", "bs": 32.0, "opt": "sgd"}, False),
        ({"lr": True, "bs": 32.0, "opt": "sgd"}, False),
        ({"lr": 0.5, "bs": 48.0, "opt": "sgd"}, False),
        ({"lr": 0.5, "bs": "32", "opt": "sgd"}, False),
        ({"lr": 0.5, "bs": 32.0, "opt": "rmsprop"}, False),
        ({"lr": 0.5, "bs": 32.0}, False),
        ({"lr": 0.5, "bs": 32.0, "opt": "sgd", "extra": 1}, False),
    ],
)
def test_contains(config: dict[str, Any], inside: bool) -> None:
    assert MIXED.contains(config) is inside


@st.composite
def wire_spaces(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 6))
    items: list[dict[str, Any]] = []
    for i in range(count):
        kind = draw(st.sampled_from(["continuous", "points", "values"]))
        low = draw(st.floats(-1e6, 1e6, allow_nan=False))
        width = draw(st.floats(1e-3, 1e6))
        if kind == "continuous":
            items.append(cont(f"p{i}", repr(low), repr(low + width)))
        elif kind == "points":
            n = draw(st.integers(2, 50))
            items.append(
                disc(f"p{i}", lower_bound=repr(low), upper_bound=repr(low + width), discrete_points_num=str(n))
            )
        else:
            words = st.from_regex(r"[a-z0-9.]{1,8}", fullmatch=True)
            values = draw(
                st.lists(
                    words,
                    min_size=1,
                    max_size=8,
                    unique_by=lambda w: str(float(w)) if w.replace(".", "", 1).isdigit() else w,
                )
            )
            items.append(disc(f"p{i}", discrete_values=values))
    return items


@settings(max_examples=60, deadline=None)
@given(wire=wire_spaces(), seed=st.integers(0, 2**32 - 1))
def test_any_valid_wire_space_parses_and_samples_inside(wire: list[dict[str, Any]], seed: int) -> None:
    space = parse_space(wire)
    assert space.names == tuple(item["name"] for item in wire)
    assert space.contains(space.random_config(np.random.default_rng(seed)))


# --- parse_reward_attrs --------------------------------------------------------------------------------


def test_reward_attrs_good() -> None:
    attrs = parse_reward_attrs(
        [
            {"name": "acc", "mode": "max", "regex": r"acc=([0-9.]+)"},
            {"name": "loss", "mode": "min", "regex": r"loss: \S+"},
            {"name": "f1", "regex": r"f1 (\d+)"},
            {"name": "auc", "mode": "", "regex": "auc"},
        ]
    )
    assert attrs[0] == RewardAttr("acc", "max", r"acc=([0-9.]+)")
    assert [a.mode for a in attrs] == ["max", "min", "max", "max"]


BAD_REWARDS: list[tuple[str, Any, str]] = [
    ("not a list", {"name": "acc", "regex": "a"}, "at least one"),
    ("empty", [], "at least one"),
    ("eleven", [{"name": f"m{i}", "regex": "a"} for i in range(11)], "at most 10"),
    ("item not an object", ["acc"], "reward_attrs[0]"),
    ("no name", [{"regex": "a"}], "name is required"),
    ("bad name", [{"name": "a b", "regex": "a"}], "'a b'"),
    ("table column name", [{"name": "status", "regex": "a"}], "'status'"),
    ("duplicate", [{"name": "acc", "regex": "a"}, {"name": "acc", "regex": "b"}], "'acc' is defined twice"),
    ("bad mode", [{"name": "acc", "mode": "maximize", "regex": "a"}], "'acc': mode"),
    ("no regex", [{"name": "acc"}], "'acc': regex is required"),
    ("regex not a string", [{"name": "acc", "regex": 1}], "'acc': regex is required"),
    ("regex too long", [{"name": "acc", "regex": "a" * 513}], "'acc': regex is longer"),
    ("regex does not compile", [{"name": "acc", "regex": "acc=([0-9"}], "'acc': regex does not compile"),
    ("bad group reference", [{"name": "acc", "regex": r"(a)\2"}], "'acc': regex does not compile"),
]


@pytest.mark.parametrize(("wire", "needle"), [c[1:] for c in BAD_REWARDS], ids=[c[0] for c in BAD_REWARDS])
def test_bad_reward_attrs_are_refused(wire: Any, needle: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_reward_attrs(wire)
    assert caught.value.status == 400
    assert caught.value.code == INDICATORS
    assert caught.value.message.startswith("SearchIndicatorsError: ")
    assert needle in caught.value.message


# --- reward_from_log ----------------------------------------------------------------------------------

LOG = """\
epoch 1 acc=0.50 loss=1.2
epoch 2 acc=0.75 loss=0.8
epoch 3 acc=0.875 loss=0.5 acc=0.9
done
"""


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (r"acc=([0-9.]+)", 0.9),  # the last match wins, also within a line
        (r"loss=([0-9.]+)", 0.5),
        (r"(?<=loss=)[0-9.]+", 0.5),  # no group: the whole match
        (r"^epoch (\d+)", 3.0),  # ^ anchors at each line
        (r"(\d+\.\d+)$", 0.9),  # $ too
        (r"(?:acc|loss)=(?P<v>[0-9.]+) done", None),
        (r"f1=([0-9.]+)", None),  # no match
        (r"(epoch) \d", None),  # the last match is not a number
        (r"acc=([0-9.]+)|(done)", None),  # the last match leaves group 1 empty
        (r"do(ne)", None),
    ],
)
def test_reward_from_log(pattern: str, expected: float | None) -> None:
    assert reward_from_log(RewardAttr("m", "max", pattern), LOG) == expected


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e999", "0x1F", "1.2.3", ""])
def test_a_number_that_is_not_a_finite_number_is_no_reward(value: str) -> None:
    assert reward_from_log(RewardAttr("acc", "max", r"acc=(\S*)"), f"acc=0.5\nacc={value}\n") is None


def test_reward_numbers_in_scientific_notation_and_signs() -> None:
    attr = RewardAttr("loss", "min", r"loss=(\S+)")
    assert reward_from_log(attr, "loss=-1.5e-3\n") == -0.0015
    assert reward_from_log(attr, "loss=+2\r\n") == 2.0


def test_only_the_last_megabyte_is_scanned() -> None:
    attr = RewardAttr("acc", "max", r"acc=([0-9.]+)")
    filler = ("x" * 99 + "\n") * (REWARD_SCAN_CHARS // 100 + 1)
    assert reward_from_log(attr, "acc=0.7\n" + filler) is None
    assert reward_from_log(attr, "acc=0.7\n" + filler + "acc=0.8\n") == 0.8
    huge = "acc=0.1\n" * 2_000_000  # 16 MB
    start = time.monotonic()
    assert reward_from_log(attr, huge + "acc=0.3") == 0.3
    assert time.monotonic() - start < 5


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        (r"(a+)+$", "a" * 5000 + "!"),  # exponential backtracking in the standard re module
        (r"(x+x+)+y", "x" * 5000),
        (r"\d*\d*\d*x", "1" * 100_000),  # polynomial: ~7 minutes on one 1 kB line with re
        (r"(\w|\d)+x", ("1" * 1000 + "\n") * 500),
    ],
)
def test_pathological_regex_does_not_hang(pattern: str, text: str) -> None:
    attr = parse_reward_attrs([{"name": "m", "regex": pattern}])[0]
    start = time.monotonic()
    assert reward_from_log(attr, text, timeout_s=0.5) is None
    assert time.monotonic() - start < 3


def test_reward_to_loss() -> None:
    assert reward_to_loss(RewardAttr("acc", "max", "a"), 0.9) == -0.9
    assert reward_to_loss(RewardAttr("loss", "min", "a"), 0.9) == 0.9
