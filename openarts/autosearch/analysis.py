"""What the parameter-analysis endpoints compute, from the finished trials of a search.

* ``GET .../autosearch-parameter-analysis``: how much each hyperparameter matters to the reward,
  as the mean and standard deviation of its importance over the trees of a random forest fitted on
  ``config -> reward`` (:func:`importance`, :func:`importance_wire`). ModelArts reports fANOVA
  importance; a random forest's per-tree impurity importance is the same kind of answer (a share of
  the reward's variance explained by each parameter, summing to 1 per tree) without fANOVA's extra
  dependency, and the spread over trees says how much to trust it with only a few trials.
* ``GET .../autosearch-parameter-analysis/{parameter_name}``: a PNG scatter plot of the reward against
  one parameter (:func:`plot_parameter`).

The module is pure: no database, no HTTP. scikit-learn and matplotlib are imported inside the
functions that need them, because together they take a couple of seconds to import and the server
should not pay that at start-up for endpoints that are rarely called.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["IMPORTANCE_HEADER", "importance", "importance_wire", "plot_parameter"]

IMPORTANCE_HEADER = ["parameters", "the mean/std of importance"]

# Enough trees for the mean and std to be stable to the four decimals shown on the wire, few enough
# that a fit on a few hundred trials takes well under a second. The seed makes the answer the same on
# every call for the same trials.
_N_TREES = 64
_SEED = 0


def _as_number(value: object) -> float | None:
    """``value`` as a finite float, or ``None`` when it is not a number.

    Trial configurations may carry numbers as strings (the wire sends hyperparameters as strings), so
    ``"0.01"`` counts as a number; ``"adam"``, ``"nan"`` and booleans do not.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _is_numeric(values: Sequence[object]) -> bool:
    """A parameter is numeric when every trial that has it has a number (at least one trial must)."""
    present = [value for value in values if value is not None]
    return bool(present) and all(_as_number(value) is not None for value in present)


def _finished(
    configs: Sequence[Mapping[str, float | str]], rewards: Sequence[float]
) -> list[tuple[Mapping[str, float | str], float]]:
    """The ``(config, reward)`` pairs whose reward is a finite number: the trials there is something to learn from."""
    if len(configs) != len(rewards):
        raise ValueError(f"{len(configs)} configurations but {len(rewards)} rewards")
    pairs: list[tuple[Mapping[str, float | str], float]] = []
    for config, reward in zip(configs, rewards, strict=True):
        number = _as_number(reward)
        if number is not None:
            pairs.append((config, number))
    return pairs


def _encode(
    pairs: Sequence[tuple[Mapping[str, float | str], float]], params: Sequence[str]
) -> tuple[NDArray[np.float64], list[int]]:
    """The design matrix for the forest, and for each of its columns the index of its parameter in ``params``.

    Numeric parameters are one column each, missing values as NaN (scikit-learn's trees route them to
    whichever side of a split fits best). String parameters are one-hot encoded, one column per value
    seen, with a missing value as a category of its own, rather than ordinal-encoded, because an
    ordinal code invents an order ("adam" < "sgd" < "rmsprop") that the trees would have to split
    around: with one-hot columns any single value can be separated from the rest in one split, which
    matters with the 10 to 50 trials a search has. Mean-decrease-in-impurity importance is additive over
    columns, so summing a parameter's one-hot columns gives exactly the impurity reduction the trees
    credit to that parameter.
    """
    columns: list[NDArray[np.float64]] = []
    owners: list[int] = []
    for index, name in enumerate(params):
        values = [config.get(name) for config, _ in pairs]
        if _is_numeric(values):
            numbers = [_as_number(value) for value in values]
            columns.append(np.array([math.nan if n is None else n for n in numbers], dtype=np.float64))
            owners.append(index)
            continue
        labels = ["\0missing" if value is None else str(value) for value in values]
        for category in sorted(set(labels)):
            columns.append(np.array([1.0 if label == category else 0.0 for label in labels], dtype=np.float64))
            owners.append(index)
    matrix = np.column_stack(columns) if columns else np.empty((len(pairs), 0), dtype=np.float64)
    return matrix, owners


def _varies(column: NDArray[np.float64]) -> bool:
    """Whether a column takes more than one value (NaN counting as a value of its own)."""
    missing = np.isnan(column)
    present = column[~missing]
    distinct = len(np.unique(present)) + (1 if missing.any() else 0)
    return distinct > 1


def importance(
    configs: Sequence[Mapping[str, float | str]], rewards: Sequence[float], params: Sequence[str]
) -> list[tuple[str, float, float]]:
    """``(name, mean, std)`` of each parameter's importance to the reward, in the order of ``params``.

    A ``RandomForestRegressor`` (64 trees, fixed seed, so the same trials always give the same answer)
    is fitted on the finished trials, ``config -> reward``. Each tree's ``feature_importances_`` is its
    normalised mean decrease in impurity per column; a parameter's importance in a tree is the sum over
    its columns (see :func:`_encode` for why string parameters are one-hot encoded), and the result is
    the mean and the population standard deviation of that over the trees. A tree that could not split
    its bootstrap sample counts as zero for every parameter, which is what it learnt.

    Trials whose reward is not a finite number are ignored. With fewer than two such trials, or when
    neither the rewards nor any parameter vary, there is nothing to explain and every parameter gets
    ``(name, 0.0, 0.0)``. The direction of the search (max or min) does not matter: importance is about
    how much the reward changes, not which way is better.
    """
    zeros = [(name, 0.0, 0.0) for name in params]
    pairs = _finished(configs, rewards)
    if len(pairs) < 2 or not params:
        return zeros
    target = np.array([reward for _, reward in pairs], dtype=np.float64)
    if float(np.ptp(target)) == 0.0:
        return zeros
    matrix, owners = _encode(pairs, params)
    if not any(_varies(matrix[:, column]) for column in range(matrix.shape[1])):
        return zeros

    from sklearn.ensemble import RandomForestRegressor  # type: ignore[import-untyped]

    # n_jobs=1: the server is threaded, and a pool of processes per request would cost more than the fit.
    forest = RandomForestRegressor(n_estimators=_N_TREES, random_state=_SEED, n_jobs=1)
    forest.fit(matrix, target)
    per_tree = np.array([tree.feature_importances_ for tree in forest.estimators_], dtype=np.float64)
    per_param = np.zeros((per_tree.shape[0], len(params)), dtype=np.float64)
    for column, owner in enumerate(owners):
        per_param[:, owner] += per_tree[:, column]
    means = per_param.mean(axis=0)
    stds = per_param.std(axis=0)
    return [(name, float(means[i]), float(stds[i])) for i, name in enumerate(params)]


def _fixed(value: float) -> str:
    # Importance is never negative; clamping also keeps float noise from printing as "-0.0000".
    return f"{max(value, 0.0):.4f}"


def importance_wire(rows: list[tuple[str, float, float]]) -> dict[str, Any]:
    """The body of the analysis endpoint: ``{"header": [...], "data": [[name, "mean/std"], ...]}``.

    Four decimals, as ModelArts shows them (``"0.2443/0.3867"``); rows keep the order given.
    """
    return {
        "header": list(IMPORTANCE_HEADER),
        "data": [[name, f"{_fixed(mean)}/{_fixed(std)}"] for name, mean, std in rows],
    }


def plot_parameter(
    param: str,
    configs: Sequence[Mapping[str, float | str]],
    rewards: Sequence[float],
    reward_name: str,
    path: Path,
    *,
    mode: Literal["max", "min"] = "max",
) -> None:
    """Write a PNG scatter plot of ``reward_name`` against ``param`` to ``path``, the best trial highlighted.

    Numeric values go on a linear axis, or a logarithmic one when they are all positive and span more
    than two orders of magnitude (learning rates); strings go on a categorical axis, one column per
    value in sorted order, with repeated points spread a little sideways so that none hides another.
    ``mode`` says which reward is best. Trials without the parameter or without a finite reward are left
    out; with none left the PNG says so rather than failing, so the endpoint always has a file to return.

    The figure is a ``matplotlib.figure.Figure`` drawn by the Agg canvas, never pyplot: pyplot keeps
    global state that is not thread-safe, and the server handles requests on several threads. Parent
    folders are created, and the file is written to a temporary name in the same folder and then
    renamed over ``path``, so a reader never sees half a PNG.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    points = [(config[param], reward) for config, reward in _finished(configs, rewards) if param in config]
    figure = Figure(figsize=(6.4, 4.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_xlabel(param)
    axes.set_ylabel(reward_name)
    axes.set_title(f"{reward_name} against {param} ({len(points)} trials)")
    axes.grid(True, alpha=0.3)

    if not points:
        axes.text(0.5, 0.5, "no finished trial has this parameter", ha="center", va="center", transform=axes.transAxes)
    else:
        ys = [reward for _, reward in points]
        best = int(np.argmax(ys) if mode == "max" else np.argmin(ys))
        values = [value for value, _ in points]
        if _is_numeric(values):
            xs = [float(value) for value in values]
            if min(xs) > 0 and max(xs) / min(xs) > 100:
                axes.set_xscale("log")
            best_label = f"{xs[best]:g}"
        else:
            labels = [str(value) for value in values]
            categories = sorted(set(labels))
            position = {category: i for i, category in enumerate(categories)}
            counts = {category: labels.count(category) for category in categories}
            seen = dict.fromkeys(categories, 0)
            xs = []
            for label in labels:
                # Spread the points of one category evenly over +-0.2 around its tick, deterministically.
                count = counts[label]
                offset = 0.0 if count == 1 else -0.2 + 0.4 * seen[label] / (count - 1)
                seen[label] += 1
                xs.append(position[label] + offset)
            axes.set_xticks(range(len(categories)), categories)
            axes.set_xlim(-0.5, len(categories) - 0.5)
            best_label = labels[best]
        axes.scatter(xs, ys, s=36, alpha=0.75, color="tab:blue", label="trials")
        axes.scatter(
            [xs[best]],
            [ys[best]],
            s=180,
            marker="*",
            color="tab:red",
            edgecolors="black",
            zorder=3,
            label=f"best: {param}={best_label}, {reward_name}={ys[best]:g}",
        )
        axes.legend(loc="best", fontsize="small")
    figure.tight_layout()

    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            figure.savefig(stream, format="png")
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the plot is an ordinary output file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
