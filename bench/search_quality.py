"""How good the autosearch algorithms are at finding an optimum, against random search.

What is measured
----------------
Two standard test functions with known minima:

* Branin (2-D, x1 in [-5, 10], x2 in [0, 15]): three global minima of 0.397887.
* Hartmann-6 (6-D, the unit hypercube): one global minimum of -3.32237.

For each of ``tpe_search``, ``anneal_search``, ``bayes_opt_search`` (all with the catalogue's default
parameters) and ``random_search``, and each seed 1..5, a search of ``--trials`` (40) trials runs one
trial at a time, exactly as the controller drives it: ``openarts.autosearch.algorithms.suggest`` is
asked for trial ``i`` given the observations of trials ``0..i-1``, the function is evaluated, and the
observation is appended. The figure of one search is its best value; the script prints, per function
and algorithm, the median over the seeds of the best value and of the regret (best - optimum), and the
seconds spent in ``suggest``.

The functions are evaluated in process, not as trial scripts through the server: this benchmark
measures search quality (how close 40 trials get), which does not depend on how a trial is run, and
in-process evaluation keeps it fast and free of noise. What running trials as processes costs is
measured by ``bench/search_overhead.py``.

Why
---
A named algorithm must earn its name: each must beat random search on the median for both functions.
The script prints that verdict per algorithm; it exits 0 whether or not the verdict holds.

Usage: ``python bench/search_quality.py [--trials 40] [--seeds 5]``
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from openarts.autosearch.algorithms import Observation, algo_config, suggest
from openarts.autosearch.space import SearchSpace, parse_space

ALGORITHMS = ("tpe_search", "anneal_search", "bayes_opt_search", "random_search")
BASELINE = "random_search"


def branin(c: dict[str, float | str]) -> float:
    x1, x2 = float(c["x1"]), float(c["x2"])
    b, cc, r, s, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 6.0, 10.0, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + cc * x1 - r) ** 2 + s * (1 - t) * math.cos(x1) + s


_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H_A = np.array(
    [
        [10, 3, 17, 3.5, 1.7, 8],
        [0.05, 10, 17, 0.1, 8, 14],
        [3, 3.5, 1.7, 10, 17, 8],
        [17, 8, 0.05, 10, 0.1, 14],
    ]
)
_H_P = 1e-4 * np.array(
    [
        [1312, 1696, 5569, 124, 8283, 5886],
        [2329, 4135, 8307, 3736, 1004, 9991],
        [2348, 1451, 3522, 2883, 3047, 6650],
        [4047, 8828, 8732, 5743, 1091, 381],
    ]
)


def hartmann6(c: dict[str, float | str]) -> float:
    x = np.array([float(c[f"x{i}"]) for i in range(1, 7)])
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def _continuous(bounds: dict[str, tuple[float, float]]) -> SearchSpace:
    return parse_space(
        [
            {"name": name, "param_type": "continuous", "lower_bound": str(low), "upper_bound": str(high)}
            for name, (low, high) in bounds.items()
        ]
    )


@dataclass(frozen=True)
class Problem:
    name: str
    space: SearchSpace
    fn: Callable[[dict[str, float | str]], float]
    optimum: float


PROBLEMS = (
    Problem("Branin", _continuous({"x1": (-5.0, 10.0), "x2": (0.0, 15.0)}), branin, 0.397887),
    Problem("Hartmann-6", _continuous({f"x{i}": (0.0, 1.0) for i in range(1, 7)}), hartmann6, -3.32237),
)


def run_search(problem: Problem, algorithm: str, seed: int, trials: int) -> tuple[float, float]:
    """One search, one trial at a time: its best value and the seconds spent in ``suggest``."""
    algo = algo_config(algorithm, seed=seed, num_samples=trials)
    history: list[Observation] = []
    spent = 0.0
    for index in range(trials):
        start = time.perf_counter()
        config = suggest(algo, problem.space, index, history)
        spent += time.perf_counter() - start
        history.append(Observation(config, problem.fn(config)))
    return min(o.loss for o in history), spent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 1..N")
    args = parser.parse_args()
    seeds = range(1, args.seeds + 1)

    print(f"{args.trials} trials, seeds 1..{args.seeds}, one trial at a time; figures are medians over seeds\n")
    medians: dict[tuple[str, str], float] = {}
    header = f"{'function':<11} {'algorithm':<17} {'best':>10} {'regret':>10} {'suggest s':>10}  bests by seed"
    print(header)
    print("-" * len(header))
    for problem in PROBLEMS:
        for algorithm in ALGORITHMS:
            results = [run_search(problem, algorithm, seed, args.trials) for seed in seeds]
            bests = [best for best, _ in results]
            best = statistics.median(bests)
            medians[problem.name, algorithm] = best
            spent = sum(s for _, s in results)
            by_seed = " ".join(f"{b:.4g}" for b in bests)
            print(
                f"{problem.name:<11} {algorithm:<17} {best:>10.5f} {best - problem.optimum:>10.5f} {spent:>10.1f}"
                f"  {by_seed}"
            )
        print()

    print(f"Does each algorithm beat {BASELINE} on the median regret for both functions?")
    for algorithm in ALGORITHMS:
        if algorithm == BASELINE:
            continue
        wins = [medians[p.name, algorithm] < medians[p.name, BASELINE] for p in PROBLEMS]
        detail = ", ".join(f"{p.name}: {'yes' if w else 'no'}" for p, w in zip(PROBLEMS, wins, strict=True))
        print(f"  {algorithm:<17} {'YES' if all(wins) else 'NO':<4} ({detail})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
