"""Parameter analysis: random-forest importance and the reward-against-parameter PNG."""

from __future__ import annotations

import random
import re
import threading
from pathlib import Path

import matplotlib.image
import pytest

from openarts.autosearch.analysis import IMPORTANCE_HEADER, importance, importance_wire, plot_parameter

Config = dict[str, float | str]


def _trials(count: int = 30, seed: int = 7) -> tuple[list[Config], list[float]]:
    """The reward depends strongly on x and not at all on y."""
    rng = random.Random(seed)
    configs: list[Config] = [{"x": rng.uniform(-3, 3), "y": rng.uniform(-3, 3)} for _ in range(count)]
    rewards = [-((float(c["x"]) - 1.0) ** 2) for c in configs]
    return configs, rewards


# --- importance -------------------------------------------------------------------------------------


def test_the_parameter_that_drives_the_reward_is_the_important_one() -> None:
    configs, rewards = _trials()
    rows = importance(configs, rewards, ["x", "y"])
    assert [name for name, _, _ in rows] == ["x", "y"]
    (_, x_mean, x_std), (_, y_mean, y_std) = rows
    assert x_mean > 0.8 > 0.2 > y_mean
    assert x_mean + y_mean == pytest.approx(1.0)  # each tree's importances sum to 1
    assert x_std >= 0 and y_std >= 0

    wire = importance_wire(rows)
    assert wire["header"] == ["parameters", "the mean/std of importance"] == IMPORTANCE_HEADER
    assert [row[0] for row in wire["data"]] == ["x", "y"]
    for _, cell in wire["data"]:
        assert re.fullmatch(r"[01]\.\d{4}/[01]\.\d{4}", cell), cell


def test_importance_is_reproducible_and_keeps_the_order_asked() -> None:
    configs, rewards = _trials()
    assert importance(configs, rewards, ["y", "x"]) == importance(configs, rewards, ["y", "x"])
    names = [name for name, _, _ in importance(configs, rewards, ["y", "x"])]
    assert names == ["y", "x"]


def test_string_parameters_are_reported_per_parameter() -> None:
    rng = random.Random(3)
    optimisers = ["adam", "sgd", "rmsprop"]
    configs: list[Config] = [{"optimizer": rng.choice(optimisers), "lr": rng.uniform(0.001, 0.1)} for _ in range(40)]
    bonus = {"adam": 0.9, "sgd": 0.1, "rmsprop": 0.5}
    rewards = [bonus[str(c["optimizer"])] for c in configs]
    rows = importance(configs, rewards, ["lr", "optimizer"])
    assert [name for name, _, _ in rows] == ["lr", "optimizer"]
    assert rows[1][1] > 0.8 > 0.2 > rows[0][1]
    assert rows[0][1] + rows[1][1] == pytest.approx(1.0)


def test_numbers_sent_as_strings_count_as_numbers() -> None:
    configs, rewards = _trials()
    as_strings: list[Config] = [{name: str(value) for name, value in c.items()} for c in configs]
    assert importance(as_strings, rewards, ["x", "y"]) == importance(configs, rewards, ["x", "y"])


@pytest.mark.parametrize(
    ("configs", "rewards"),
    [
        ([], []),
        ([{"x": 1.0, "y": 2.0}], [0.5]),
        ([{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}, {"x": 5.0, "y": 1.0}], [0.5, 0.5, 0.5]),  # constant reward
        ([{"x": 1.0, "y": "a"}, {"x": 1.0, "y": "a"}, {"x": 1.0, "y": "a"}], [0.1, 0.2, 0.3]),  # constant config
        ([{"x": 1.0, "y": 2.0}, {"x": 3.0, "y": 4.0}], [0.5, float("nan")]),  # one finished trial
    ],
)
def test_degenerate_inputs_give_zero_importance(configs: list[Config], rewards: list[float]) -> None:
    assert importance(configs, rewards, ["x", "y"]) == [("x", 0.0, 0.0), ("y", 0.0, 0.0)]
    assert importance_wire(importance(configs, rewards, ["x", "y"]))["data"] == [
        ["x", "0.0000/0.0000"],
        ["y", "0.0000/0.0000"],
    ]


def test_a_constant_parameter_gets_no_importance() -> None:
    configs, rewards = _trials()
    for config in configs:
        config["z"] = 0.5
    rows = dict((name, (mean, std)) for name, mean, std in importance(configs, rewards, ["x", "y", "z"]))
    assert rows["z"] == (0.0, 0.0)
    assert rows["x"][0] > 0.8


def test_two_trials_are_enough_to_answer() -> None:
    rows = importance([{"x": 0.0}, {"x": 1.0}], [0.0, 1.0], ["x"])
    assert rows[0][0] == "x" and 0.0 < rows[0][1] <= 1.0


def test_missing_values_and_unfinished_trials_are_tolerated() -> None:
    configs, rewards = _trials()
    del configs[0]["y"]
    configs[1]["x"] = "oops"  # makes x categorical for this fit, but it still answers
    rewards[2] = float("inf")
    rows = importance(configs, rewards, ["x", "y", "absent"])
    assert [name for name, _, _ in rows] == ["x", "y", "absent"]
    assert rows[2][1:] == (0.0, 0.0)


def test_mismatched_lengths_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="2 configurations but 1 rewards"):
        importance([{"x": 1.0}, {"x": 2.0}], [1.0], ["x"])


def test_wire_formats_four_decimals() -> None:
    wire = importance_wire([("batch_size", 0.24434, 0.38666), ("lr", 1.0, 0.0), ("noise", -1e-17, 0.0)])
    assert wire["data"] == [["batch_size", "0.2443/0.3867"], ["lr", "1.0000/0.0000"], ["noise", "0.0000/0.0000"]]


# --- plots ------------------------------------------------------------------------------------------


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 5_000
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image.std() > 0.01  # something was drawn
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_plot_of_a_numeric_parameter(tmp_path: Path) -> None:
    configs, rewards = _trials()
    path = tmp_path / "output" / "log" / "hyperparameter-analysis" / "fanova" / "x.png"
    plot_parameter("x", configs, rewards, "acc", path)
    _assert_png(path)


def test_plot_of_a_string_parameter_and_min_mode(tmp_path: Path) -> None:
    configs: list[Config] = [{"optimizer": name} for name in ["adam", "sgd", "adam", "rmsprop", "sgd", "adam"]]
    rewards = [0.3, 0.9, 0.2, 0.5, 0.8, 0.25]
    path = tmp_path / "a" / "b" / "optimizer.png"
    plot_parameter("optimizer", configs, rewards, "loss", path, mode="min")
    _assert_png(path)


def test_plot_of_a_log_scaled_parameter_overwrites(tmp_path: Path) -> None:
    configs: list[Config] = [{"lr": 10.0**-k} for k in range(1, 7)]
    rewards = [0.1, 0.5, 0.9, 0.7, 0.4, 0.2]
    path = tmp_path / "lr.png"
    path.write_bytes(b"stale")
    plot_parameter("lr", configs, rewards, "acc", path)
    _assert_png(path)


def test_plot_without_finished_trials_still_writes_a_png(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "x.png"
    plot_parameter("x", [{"y": 1.0}, {"x": 2.0}], [0.5, float("nan")], "acc", path)
    _assert_png(path)


def test_plots_can_be_drawn_from_several_threads(tmp_path: Path) -> None:
    configs, rewards = _trials()
    errors: list[BaseException] = []

    def draw(index: int) -> None:
        try:
            plot_parameter("x" if index % 2 else "y", configs, rewards, "acc", tmp_path / str(index) / "p.png")
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=draw, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for index in range(4):
        _assert_png(tmp_path / str(index) / "p.png")
