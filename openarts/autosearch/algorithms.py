"""The search algorithms of autosearch: the catalogue, their parameters, and one pure ``suggest``.

Each algorithm name is the real algorithm, with its parameters meaning what they mean there:

* ``tpe_search``: hyperopt's tree-structured Parzen estimator (``hyperopt.tpe``); ``gamma`` is the
  quantile that splits good from bad trials, ``n_initial_points`` is hyperopt's ``n_startup_jobs``
  (random trials before TPE takes over).
* ``anneal_search``: hyperopt's simulated annealing (``hyperopt.anneal``); ``avg_best_idx`` is the
  mean of the geometric distribution over the score-sorted trials to explore around, ``shrink_coef``
  how fast the neighbourhood shrinks as trials accumulate.
* ``bayes_opt_search``: a Gaussian process from ``bayesian-optimization`` (Matern 5/2, as its
  ``BayesianOptimization`` builds it); ``kind`` picks the acquisition function (``ucb``, ``ei``,
  ``poi``), ``kappa`` is UCB's exploration weight and ``xi`` the improvement margin of EI and PoI.
* ``random_search``: uniform random sampling. Not in the catalogue and refused from users; it is the
  baseline that ``bench/search_quality.py`` measures the others against.

Why ``suggest`` is a pure function. The controller may be killed at any moment and must come back to
the same search: rather than keeping each algorithm's in-memory state (and pickling it), ``suggest``
rebuilds the algorithm from the recorded observations on every call. It is deterministic: the same
(algorithm with its seed, space, trial index, history) always gives the same configuration, because its
random generator is seeded from ``(seed, index)`` alone. Rebuilding costs little next to running a trial:
milliseconds for hyperopt (0.15 s with 1000 observations); for the Gaussian process, which refits on
every call, about 0.05 s at 40 observations, 0.1 s at 100, 0.8 s at 300 and 11 s at 1000 (6-D), the
cubic cost of any exact GP. A caller with long searches should call it off its event loop.

History. ``history`` is every finished observation of the search, from all its algorithms (when a
search selects several algorithms they share what they learn), oldest first. Its order matters a
little (TPE forgets the oldest observations gradually once there are more than 25), so the caller
must pass the same order every time, e.g. by trial index.
Observations that do not fit the space (a parameter missing, unknown or out of range) or whose loss is
not finite are skipped, so a stale row can never crash a search.

What is cached, and why it changes nothing. Handing hyperopt the history costs more than its algorithm
once a search has run a while: every observation becomes a trial document that hyperopt copies and
checks (``insert_trial_docs``), O(n) per suggestion and O(n^2) over a search. So the hyperopt ``Domain``
of a space and the ``Trials`` built for a history are kept (a few, most recent first), and a later call
whose history extends a kept one adds only the new documents. The documents are the same ones the call
would build from scratch (trial id = position in the history), and hyperopt's algorithms only read the
``Trials`` and ``Domain`` they are given (as in ``fmin``, which reuses both for every suggestion), so the
answer is identical; the tests check it against a fresh build.

The libraries load on first use (hyperopt, bayes_opt and scikit-learn take a second to import, and the
server and the CLI need only the catalogue), in the background as soon as a search is checked, so that
the import overlaps the create request and the job's admission (see ``_preload``).
"""

from __future__ import annotations

import logging
import math
import sys
import threading
import types
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from openarts.autosearch.space import Param, SearchSpace, search_params_error

ParamType = Literal["Integer", "Float", "String"]
Check = Callable[[Any], str | None]
"""Returns why a typed value is out of range, or None when it is fine."""

SEED_MAX = 2**32 - 1
_log = logging.getLogger(__name__)


def _any(_: Any) -> str | None:
    return None


def _one_of(*choices: str) -> Check:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"


def _at_least(low: float) -> Check:
    return lambda v: None if v >= low else f"must be at least {low:g}"


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Check:
    def check(v: Any) -> str | None:
        ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
        if ok:
            return None
        return f"must be in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    return check


@dataclass(frozen=True)
class ParamSpec:
    key: str
    default: str
    type: ParamType
    check: Check = _any


@dataclass(frozen=True)
class AlgoSpec:
    name: str
    params: tuple[ParamSpec, ...]
    description: str

    def param(self, key: str) -> ParamSpec | None:
        return next((p for p in self.params if p.key == key), None)


_NUM_SAMPLES = ParamSpec("num_samples", "20", "Integer", _between(1, 1000))
# The Gaussian process refits on every finished trial and is proposed on the controller's thread: its
# cost grows steeply (about 0.1 s at 100 trials, 0.8 s at 300), so its searches stay at 200 trials.
_GP_NUM_SAMPLES = ParamSpec("num_samples", "20", "Integer", _between(1, 200))
_SEED = ParamSpec("seed", "1", "Integer", _between(0, SEED_MAX))

CATALOGUE: tuple[AlgoSpec, ...] = (
    AlgoSpec(
        "bayes_opt_search",
        (
            ParamSpec("kind", "ucb", "String", _one_of("ucb", "ei", "poi")),
            ParamSpec("kappa", "2.5", "Float", _at_least(0)),
            ParamSpec("xi", "0.0", "Float", _at_least(0)),
            _GP_NUM_SAMPLES,
            _SEED,
        ),
        "Hyperparameter search using Gaussian process.",
    ),
    AlgoSpec(
        "tpe_search",
        (
            ParamSpec("gamma", "0.25", "Float", _between(0, 1, low_open=True, high_open=True)),
            ParamSpec("n_initial_points", "20", "Integer", _between(1, 1000)),
            _NUM_SAMPLES,
            _SEED,
        ),
        "Hyperparameter search using the tree-structured Parzen estimator algorithm.",
    ),
    AlgoSpec(
        "anneal_search",
        (
            # hyperopt draws from a geometric distribution of mean avg_best_idx, whose p = 1/avg_best_idx
            # must be at most 1: a mean below 1 is meaningless, not just unusual.
            ParamSpec("avg_best_idx", "2.0", "Float", _at_least(1)),
            ParamSpec("shrink_coef", "0.1", "Float", _between(0, 1, low_open=True)),
            _NUM_SAMPLES,
            _SEED,
        ),
        "Hyperparameter search using simulated annealing algorithm.",
    ),
)
"""The three algorithms of ``GET /v2/{project_id}/search-algorithms``, in ModelArts' order."""

RANDOM_SEARCH = AlgoSpec("random_search", (_NUM_SAMPLES, _SEED), "Uniform random search (internal baseline).")
_SPECS: dict[str, AlgoSpec] = {spec.name: spec for spec in (*CATALOGUE, RANDOM_SEARCH)}


def catalogue_wire() -> dict[str, Any]:
    """The body of ``GET /v2/{project_id}/search-algorithms``: ModelArts' list, values as strings."""
    return {
        "search_algo_count": len(CATALOGUE),
        "search_algo_list": [
            {
                "name": spec.name,
                "params": [{"key": p.key, "value": p.default, "type": p.type} for p in spec.params],
                "description": spec.description,
            }
            for spec in CATALOGUE
        ],
    }


# --- configurations --------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlgoConfig:
    """One selected algorithm with every parameter typed, defaults filled in."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def num_samples(self) -> int:
        value: int = self.params["num_samples"]
        return value

    @property
    def seed(self) -> int:
        value: int = self.params["seed"]
        return value


def _typed(spec: ParamSpec, text: str) -> Any:
    """The wire string as the parameter's type; ValueError when it does not parse."""
    if spec.type == "Integer":
        stripped = text.strip()
        if not stripped.lstrip("+-").isdigit() or not stripped.isascii():
            raise ValueError(text)
        return int(stripped)
    if spec.type == "Float":
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    return text.strip().lower() if spec.key == "kind" else text


def _build(spec: AlgoSpec, given: Mapping[str, str]) -> AlgoConfig:
    params: dict[str, Any] = {}
    for p in spec.params:
        text = given.get(p.key, p.default)
        where = f"algorithm {spec.name!r}: param {p.key!r}"
        try:
            value = _typed(p, text)
        except ValueError:
            raise search_params_error(f"{where}: {text[:40]!r} is not a valid {p.type}.") from None
        problem = p.check(value)
        if problem:
            raise search_params_error(f"{where}: {text[:40]!r} {problem}.")
        params[p.key] = value
    return AlgoConfig(spec.name, params)


def algo_config(name: str, **params: Any) -> AlgoConfig:
    """An algorithm configured in code (tests, benchmarks), with the same checks as the wire.

    Unlike :func:`parse_algo_configs` this also accepts ``random_search``.
    """
    spec = _SPECS.get(name)
    if spec is None:
        raise search_params_error(f"unknown search algorithm {name!r}.")
    for key in params:
        if spec.param(key) is None:
            raise search_params_error(f"algorithm {name!r}: unknown param {key!r}.")
    return _build(spec, {key: str(value) for key, value in params.items()})


def parse_algo_configs(algo_configs: list[dict[str, Any]]) -> list[AlgoConfig]:
    """The ``algo_configs`` of an ``auto_search`` policy, typed and checked, or a 400 ``ModelArts.2826``.

    Each item is ``{name, params: [{key, value, type?}]}`` with values as strings (numbers are
    tolerated). Unknown algorithms or keys, a key given twice, a value that does not parse as its type
    or is out of range, a ``type`` that contradicts the catalogue, and an algorithm selected twice are
    refused, naming the algorithm and the key.
    """
    if not isinstance(algo_configs, list) or not algo_configs:
        raise search_params_error("algo_configs must select at least one search algorithm.")
    catalogue = {spec.name: spec for spec in CATALOGUE}
    configs: list[AlgoConfig] = []
    for i, item in enumerate(algo_configs):
        if not isinstance(item, Mapping):
            raise search_params_error(f"algo_configs[{i}] must be an object.")
        name = item.get("name")
        spec = catalogue.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(catalogue)
            raise search_params_error(f"algo_configs[{i}]: unknown search algorithm {name!r}; known: {known}.")
        if any(c.name == spec.name for c in configs):
            raise search_params_error(f"algorithm {spec.name!r} is selected twice.")
        raw_params = item.get("params")
        if raw_params is None:
            raw_params = []
        if not isinstance(raw_params, list):
            raise search_params_error(f"algorithm {spec.name!r}: params must be a list of {{key, value}}.")
        given: dict[str, str] = {}
        for j, entry in enumerate(raw_params):
            if not isinstance(entry, Mapping):
                raise search_params_error(f"algorithm {spec.name!r}: params[{j}] must be an object.")
            key = entry.get("key")
            p = spec.param(key) if isinstance(key, str) else None
            if p is None:
                keys = ", ".join(q.key for q in spec.params)
                raise search_params_error(f"algorithm {spec.name!r}: unknown param {key!r}; known: {keys}.")
            if key in given:
                raise search_params_error(f"algorithm {spec.name!r}: param {p.key!r} is given twice.")
            value = entry.get("value")
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                raise search_params_error(f"algorithm {spec.name!r}: param {p.key!r} needs a string value.")
            declared = entry.get("type")
            if declared not in (None, "") and (not isinstance(declared, str) or declared.lower() != p.type.lower()):
                raise search_params_error(
                    f"algorithm {spec.name!r}: param {p.key!r} is of type {p.type}, not {declared!r}."
                )
            given[p.key] = str(value)
        configs.append(_build(spec, given))
    _preload([config.name for config in configs])
    return configs


_HYPEROPT_ALGORITHMS = ("tpe_search", "anneal_search")
_preloading: set[str] = set()  # libraries whose loading has been started
_PRELOAD_LOCK = threading.Lock()


def _preload(names: Sequence[str]) -> None:
    """Start loading the libraries these algorithms need, in the background, if they are not loaded yet.

    A search is checked when it is created and again when its job starts; its first suggestion follows
    within a tenth of a second, and hyperopt alone takes a third of a second to import. Loading it from
    here overlaps that with the create request and the job's admission. Returns at once; the
    suggestion's own import waits for this one to finish (Python's import lock), so nothing runs twice.
    """
    wanted = set()
    if any(name in _HYPEROPT_ALGORITHMS for name in names) and "hyperopt" not in sys.modules:
        wanted.add("hyperopt")
    if "bayes_opt_search" in names and "bayes_opt" not in sys.modules:
        wanted.add("bayes_opt")
    with _PRELOAD_LOCK:
        wanted -= _preloading
        _preloading.update(wanted)
    if wanted:
        threading.Thread(target=_load_libraries, args=(sorted(wanted),), name="search-libraries", daemon=True).start()


def _load_libraries(libraries: list[str]) -> None:
    try:
        for library in libraries:
            if library == "hyperopt":
                _load_hyperopt()
            else:
                import bayes_opt  # noqa: F401 - loaded for the first suggestion, which waits for it
    except Exception:  # the suggestion imports it again, and reports what goes wrong then
        _log.exception("loading the search libraries in the background failed")


# --- suggest ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Observation:
    """A finished trial as the algorithms see it. Lower ``loss`` is better: the caller negates the
    rewards of ``mode: max`` metrics."""

    config: dict[str, float | str]
    loss: float


def _seed(algo: AlgoConfig, index: int) -> int:
    """A 32-bit seed drawn from (the search's seed, the trial index) and nothing else."""
    return int(np.random.SeedSequence([algo.seed, index]).generate_state(1)[0])


def _usable(space: SearchSpace, history: Sequence[Observation]) -> list[Observation]:
    usable: list[Observation] = []
    for obs in history:
        loss = obs.loss
        if isinstance(loss, bool) or not isinstance(loss, int | float | np.integer | np.floating):
            continue
        if math.isfinite(loss) and isinstance(obs.config, Mapping) and space.contains(obs.config):
            usable.append(Observation(dict(obs.config), float(loss)))
    return usable


def suggest(algo: AlgoConfig, space: SearchSpace, index: int, history: Sequence[Observation]) -> dict[str, float | str]:
    """The configuration of this algorithm's trial number ``index`` (0-based), given ``history``.

    Pure and deterministic (see the module docstring): call it again after a restart with the same
    arguments and the answer is the same. Every value lies in the space: continuous values within
    their bounds, discrete values taken from their list.
    """
    if index < 0:
        raise ValueError("index must be >= 0")
    seed = _seed(algo, index)
    if algo.name == "random_search":
        return space.random_config(np.random.default_rng(seed))
    if algo.name == "tpe_search":
        _load_hyperopt()
        from hyperopt import tpe  # type: ignore[import-untyped]

        return _hyperopt_suggest(
            space,
            history,
            lambda ids, domain, trials: tpe.suggest(
                ids,
                domain,
                trials,
                seed,
                gamma=algo.params["gamma"],
                n_startup_jobs=algo.params["n_initial_points"],
                verbose=False,
            ),
        )
    if algo.name == "anneal_search":
        _load_hyperopt()
        from hyperopt import anneal

        return _hyperopt_suggest(
            space,
            history,
            lambda ids, domain, trials: anneal.suggest(
                ids,
                domain,
                trials,
                seed,
                avg_best_idx=algo.params["avg_best_idx"],
                shrink_coef=algo.params["shrink_coef"],
            ),
        )
    if algo.name == "bayes_opt_search":
        return _bayes_suggest(algo, space, index, _usable(space, history), seed)
    raise ValueError(f"unknown search algorithm {algo.name!r}")


# --- hyperopt: tpe_search, anneal_search -------------------------------------------------------------

HyperoptSuggest = Callable[[list[int], Any, Any], list[dict[str, Any]]]


def _never_called(_: Any) -> float:
    raise AssertionError("the objective runs as trials, never inside hyperopt")


def _hyperopt_suggest(
    space: SearchSpace, history: Sequence[Observation], algorithm: HyperoptSuggest
) -> dict[str, float | str]:
    """Give hyperopt the usable observations as a ``Trials`` and ask ``algorithm`` for the next point.

    Continuous parameters are ``hp.uniform``; discrete ones ``hp.choice`` over the positions of their
    values, so that hyperopt records (and is given back) an index whatever the values are.
    """
    with _HYPEROPT_LOCK:  # the kept Domain and Trials are shared: one suggestion at a time
        domain, trials, observed = _hyperopt_inputs(space, history)
        (new_doc,) = algorithm([observed], domain, trials)
    chosen = new_doc["misc"]["vals"]
    return {p.name: _from_hyperopt(p, chosen[p.name][0]) for p in space.params}


@dataclass
class _KeptTrials:
    """A hyperopt ``Trials`` of the usable observations of ``history``, in order, for ``space``."""

    space: SearchSpace
    history: list[Observation]  # as given, usable or not
    observed: int  # how many of them were usable: the documents in ``trials``
    trials: Any


_HYPEROPT_LOCK = threading.Lock()
_DOMAINS: OrderedDict[SearchSpace, Any] = OrderedDict()  # most recently used last
_KEPT: list[_KeptTrials] = []  # most recently used last
_KEEP_DOMAINS = 16
_KEEP_TRIALS = 16  # a few searches at once, each extending its own history


def _hyperopt_inputs(space: SearchSpace, history: Sequence[Observation]) -> tuple[Any, Any, int]:
    """The ``Domain`` of ``space``, a ``Trials`` of exactly the usable observations of ``history`` and
    their number; from what is kept where it can be."""
    from hyperopt import base

    domain = _DOMAINS.pop(space, None)
    if domain is None:
        domain = base.Domain(_never_called, _hyperopt_expression(space))
    _DOMAINS[space] = domain
    while len(_DOMAINS) > _KEEP_DOMAINS:
        _DOMAINS.popitem(last=False)

    # A kept Trials can be extended if the history it holds is where this one starts.
    kept = next((k for k in reversed(_KEPT) if k.space == space and _starts_with(history, k.history)), None)
    if kept is None:
        kept = _KeptTrials(space, [], 0, base.Trials())
    else:
        _KEPT.remove(kept)
    new = history[len(kept.history) :]
    usable = _usable(space, new)  # each observation is judged on its own: the same as judging them all
    if usable:
        docs = [_trial_doc(kept.trials, domain, space, kept.observed + i, obs) for i, obs in enumerate(usable)]
        kept.trials.insert_trial_docs(docs)
    kept.history.extend(new)
    kept.observed += len(usable)
    kept.trials.refresh()
    _KEPT.append(kept)
    del _KEPT[:-_KEEP_TRIALS]
    return domain, kept.trials, kept.observed


def _starts_with(observed: Sequence[Observation], prefix: Sequence[Observation]) -> bool:
    if len(prefix) > len(observed):
        return False
    return all(a is b or a == b for a, b in zip(prefix, observed, strict=False))


def _hyperopt_expression(space: SearchSpace) -> dict[str, Any]:
    from hyperopt import hp

    return {
        p.name: hp.uniform(p.name, p.low, p.high)
        if p.kind == "continuous"
        else hp.choice(p.name, list(range(len(p.values))))
        for p in space.params
    }


def _trial_doc(trials: Any, domain: Any, space: SearchSpace, tid: int, obs: Observation) -> dict[str, Any]:
    """The hyperopt document of one finished observation, as trial number ``tid``."""
    from hyperopt import base

    vals: dict[str, list[float | int]] = {}
    for p in space.params:
        value = obs.config[p.name]
        if p.kind == "continuous":
            assert isinstance(value, int | float)
            vals[p.name] = [float(value)]
        else:
            position = p.index_of(value)
            assert position is not None
            vals[p.name] = [position]
    misc = {
        "tid": tid,
        "cmd": domain.cmd,
        "workdir": domain.workdir,
        "idxs": {name: [tid] for name in vals},
        "vals": vals,
    }
    result = {"status": base.STATUS_OK, "loss": float(obs.loss)}
    (doc,) = trials.new_trial_docs([tid], [None], [result], [misc])
    doc["state"] = base.JOB_STATE_DONE
    return dict(doc)


def clear_caches() -> None:
    """Forget every kept ``Domain`` and ``Trials`` (tests compare against fresh builds)."""
    with _HYPEROPT_LOCK:
        _DOMAINS.clear()
        _KEPT.clear()


_IMPORT_LOCK = threading.Lock()


def _load_hyperopt() -> None:
    """Import hyperopt, leaving out its ATPE optimiser until someone asks for it.

    hyperopt's ``__init__`` imports every optimiser it ships, and ATPE alone loads ``scipy.stats``: about
    0.6 s of the 0.9 s a search's first suggestion would otherwise spend importing, for an optimiser the
    catalogue does not offer. While the package initialises, an empty placeholder stands in for
    ``hyperopt.atpe`` (nothing else in hyperopt imports it); it is removed right after, so that ``import
    hyperopt.atpe`` later loads the real module as usual.
    """
    with _IMPORT_LOCK:
        if "hyperopt" in sys.modules:
            return
        placeholder = types.ModuleType("hyperopt.atpe")
        sys.modules.setdefault("hyperopt.atpe", placeholder)
        try:
            import hyperopt
        finally:
            if sys.modules.get("hyperopt.atpe") is placeholder:
                del sys.modules["hyperopt.atpe"]
            package = sys.modules.get("hyperopt")
            if package is not None and getattr(package, "atpe", None) is placeholder:
                del hyperopt.atpe


def _from_hyperopt(p: Param, raw: Any) -> float | str:
    if p.kind == "continuous":
        assert p.low is not None and p.high is not None
        return float(min(max(float(raw), p.low), p.high))
    return p.values[int(raw)]


# --- bayesian-optimization: bayes_opt_search -------------------------------------------------------

LOSS_CLIP = 1e100
BAYES_RANDOM_STARTS = 2
"""Below this many distinct observed points the Gaussian process has nothing to fit: sample uniformly."""
BAYES_ACQ_RANDOM = 1_000
BAYES_ACQ_STARTS = 2
"""The acquisition optimiser: ``BAYES_ACQ_RANDOM`` random candidates (bayes_opt's default is 10 000),
the best ``BAYES_ACQ_STARTS`` of which start L-BFGS-B (default 10). This keeps one suggestion near
50 ms on 40 points in 2-D and 6-D, instead of 200 ms, with no measurable loss on the benchmark's
functions: the acquisition surface is smooth and L-BFGS-B still polishes its optimum."""


def _rank_order(p: Param) -> list[int]:
    """The positions of a discrete parameter's values in the order the Gaussian process sees them.

    Numbers are sorted by value, so that neighbouring points are neighbours on the axis (the GP assumes
    a smooth function of it); values that are not all numbers keep the order they were given in.
    """
    if any(isinstance(v, str) for v in p.values):
        return list(range(len(p.values)))
    return sorted(range(len(p.values)), key=lambda i: float(p.values[i]))


def _bayes_suggest(
    algo: AlgoConfig, space: SearchSpace, index: int, observed: Sequence[Observation], seed: int
) -> dict[str, float | str]:
    """A Gaussian-process suggestion from ``bayesian-optimization``, on an all-continuous encoding.

    A discrete parameter with n values becomes a continuous axis over [-0.5, n - 0.5] whose integer
    points are its values (see :func:`_rank_order`); a suggestion is rounded to the nearest. bayes_opt
    has native integer and categorical parameters, but they are marked experimental and switch its
    acquisition optimiser to differential evolution, which takes over half a second per suggestion.
    A parameter with a single value is simply fixed.
    """
    rng = np.random.default_rng(seed)
    fixed = {p.name: p.values[0] for p in space.params if p.kind == "discrete" and len(p.values) == 1}
    free = [p for p in space.params if p.name not in fixed]
    if not free:
        return dict(fixed)
    ranks = {p.name: _rank_order(p) for p in free if p.kind == "discrete"}
    pbounds: dict[str, tuple[float, float]] = {}
    for p in free:
        if p.kind == "continuous":
            assert p.low is not None and p.high is not None
            pbounds[p.name] = (p.low, p.high)
        else:
            pbounds[p.name] = (-0.5, len(p.values) - 0.5)

    def encode(config: Mapping[str, float | str]) -> tuple[float, ...]:
        point: list[float] = []
        for p in free:
            value = config[p.name]
            if p.kind == "continuous":
                assert isinstance(value, int | float)
                point.append(float(value))
            else:
                position = p.index_of(value)
                assert position is not None
                point.append(float(ranks[p.name].index(position)))
        return tuple(point)

    # The same point seen twice (two algorithms, or a small discrete space) would be refused by
    # bayes_opt; the Gaussian process gets it once, with the mean of its losses.
    losses: dict[tuple[float, ...], list[float]] = {}
    for obs in observed:
        losses.setdefault(encode(obs.config), []).append(obs.loss)
    if len(losses) < BAYES_RANDOM_STARTS:
        random_config = space.random_config(rng)
        return {p.name: fixed.get(p.name, random_config[p.name]) for p in space.params}

    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    try:
        with _ONE_BLAS_THREAD, threadpool_limits(limits=1, user_api="blas"):
            x = _bayes_acquisition_argmax(algo, pbounds, losses, seed)
    except (ValueError, np.linalg.LinAlgError) as exc:
        # A degenerate history (say, points a hair apart with wildly different losses) can defeat the
        # fit. The search must go on: this trial is sampled at random, still reproducibly.
        _log.warning("bayes_opt_search fell back to a random point for trial %d: %s", index, exc)
        random_config = space.random_config(rng)
        return {p.name: fixed.get(p.name, random_config[p.name]) for p in space.params}
    config: dict[str, float | str] = dict(fixed)
    for p, coordinate in zip(free, np.asarray(x, dtype=float).ravel(), strict=True):
        if p.kind == "continuous":
            assert p.low is not None and p.high is not None
            config[p.name] = float(min(max(float(coordinate), p.low), p.high))
        else:
            rank = min(max(round(float(coordinate)), 0), len(p.values) - 1)
            config[p.name] = p.values[ranks[p.name][rank]]
    return {p.name: config[p.name] for p in space.params}


_ONE_BLAS_THREAD = threading.Lock()
"""The Gaussian process works on matrices of at most a few hundred rows, where a multi-threaded BLAS
only adds synchronisation: on a busy two-core machine it made a suggestion 2.5 times slower (OpenBLAS
threads spin while they wait for a core). The fit therefore runs with one BLAS thread. The limit is
process-wide while it lasts, so suggestions take this lock to restore the previous setting reliably."""


def _bayes_acquisition_argmax(
    algo: AlgoConfig, pbounds: dict[str, tuple[float, float]], losses: dict[tuple[float, ...], list[float]], seed: int
) -> Any:
    """Fit the Gaussian process to the observed points and return the maximiser of the acquisition."""
    from bayes_opt import BayesianOptimization, acquisition

    kind = algo.params["kind"]
    acq: acquisition.AcquisitionFunction
    if kind == "ucb":
        acq = acquisition.UpperConfidenceBound(kappa=algo.params["kappa"])
    elif kind == "ei":
        acq = acquisition.ExpectedImprovement(xi=algo.params["xi"])
    else:
        acq = acquisition.ProbabilityOfImprovement(xi=algo.params["xi"])
    optimizer = BayesianOptimization(f=None, pbounds=pbounds, acquisition_function=acq, random_state=seed, verbose=0)
    names = list(pbounds)
    for point, values in losses.items():
        # bayes_opt maximises its target: the target is minus the loss. Clipped, because the GP
        # normalises its targets by their standard deviation, which overflows to NaN for a loss of
        # 1e300 (a trial can print anything); the order of the losses, which is all EI, PoI and UCB
        # need from an outlier, is kept.
        target = -float(np.clip(np.mean(values), -LOSS_CLIP, LOSS_CLIP))
        optimizer.register(params=dict(zip(names, point, strict=True)), target=target)
    # BayesianOptimization.suggest() always optimises the acquisition with 10 000 random candidates and
    # 10 L-BFGS-B starts; calling the acquisition function itself takes the smaller budget above.
    return acq.suggest(
        gp=optimizer._gp,
        target_space=optimizer.space,
        n_random=BAYES_ACQ_RANDOM,
        n_smart=BAYES_ACQ_STARTS,
        fit_gp=True,
        random_state=np.random.RandomState(seed),
    )
