"""The AutoSearch YAML template catalogue (``GET .../training-jobs/autosearch/yaml-templates[/{type}/{name}]``).

ModelArts offers these templates as starting points for an AutoSearch framework job (``kind:
autosearch_job`` with ``algorithm.autosearch_config_path``). Every template is a YAML document with the
four sections the AutoSearch framework reads:

* ``general``: the resources of one trial (``instance_per_trial``, ``gpu_per_instance``,
  ``cpu_per_instance``);
* ``search_space``: a list of parameter groups, each with ``params`` of type ``continuous_param``
  (``name``, ``start``, ``stop``) or ``discrete_param`` (``name``, ``values``), which is how the AutoSearch
  framework writes a space;
* ``search_algorithm``: the algorithm (``type``) and the search's knobs (``max_concurrent``,
  ``reward_attr``, ``num_samples``, ``mode``, ``save_model_count`` and the algorithm's own parameters);
* ``scheduler``: how trials are scheduled (``FIFOScheduler``: each trial runs to its end).

The hpo templates are meant to be used: their ``search_algorithm`` carries exactly the parameters that
``GET /v2/{project_id}/search-algorithms`` lists, and a comment header says how each section maps onto the
zero-code ``algorithm.policies.auto_search`` object that OpenArts actually runs. The other families (nas,
augment, compression) are served so that clients listing or downloading them get a well-formed document,
but OpenArts does not run their algorithms, and each header says so.

The module is pure: the catalogue is data, rendered with PyYAML's safe dumper so that every template is
valid YAML by construction (the tests also load each one back).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import yaml

from openarts.core.errors import ApiError

__all__ = ["catalogue_wire", "template_wire"]


@dataclass(frozen=True)
class _Family:
    """One ``algorithm_type`` of the catalogue, with its display names."""

    type_en: str
    type_zh: str


_FAMILIES: tuple[_Family, ...] = (
    _Family("hpo", "超参搜索"),
    _Family("nas", "网络结构搜索"),
    _Family("augment", "数据增强"),
    _Family("compression", "模型压缩"),
)

# --- shared pieces ---------------------------------------------------------------------------------

_RUNS_ON_OPENARTS = "bayes_opt_search, tpe_search and anneal_search"

_HPO_MAPPING = f"""\
# How this template maps onto OpenArts (zero-code search: algorithm.policies.auto_search):
#   search_space continuous_param {{name, start, stop}}
#       -> search_params {{name, param_type: continuous, lower_bound: start, upper_bound: stop}}
#   search_space discrete_param {{name, values}}
#       -> search_params {{name, param_type: discrete, discrete_values: values}}
#   search_algorithm.reward_attr + mode
#       -> reward_attrs [{{name, mode, regex}}]; the regex reads the metric from the trial's log
#   search_algorithm.type and its own keys (and num_samples, seed)
#       -> algo_configs [{{name: type, params: [{{key, value, type}}]}}]
#   general, max_concurrent, save_model_count, scheduler: AutoSearch framework only. On OpenArts the
#       job's flavor decides how many trials run at once, and trials start in order (FIFO); stopping
#       a trial early is described in docs/compat.md.
# Only {_RUNS_ON_OPENARTS} run on OpenArts
# (GET /v2/{{project_id}}/search-algorithms).
"""


def _not_run_note(algorithm_type: str) -> str:
    return (
        f"# OpenArts serves this template for compatibility but does not run {algorithm_type}:\n"
        f"# only {_RUNS_ON_OPENARTS} run on OpenArts\n"
        "# (algorithm.policies.auto_search.algo_configs).\n"
    )


def _general(gpus: int = 1) -> dict[str, Any]:
    return {"instance_per_trial": 1, "gpu_per_instance": gpus, "cpu_per_instance": 8}


def _fifo() -> dict[str, Any]:
    return {"type": "FIFOScheduler"}


def _lr_batch_space(
    *, lr: tuple[float, float] = (0.0001, 0.1), batch_sizes: tuple[int, ...] = (32, 64, 128, 256)
) -> list[dict[str, Any]]:
    """The classic two-parameter hpo space: a continuous learning rate and a discrete batch size."""
    return [
        {
            "params": [
                {"type": "continuous_param", "name": "learning_rate", "start": lr[0], "stop": lr[1]},
                {"type": "discrete_param", "name": "batch_size", "values": list(batch_sizes)},
            ]
        }
    ]


def _search(algorithm: str, *, num_samples: int, max_concurrent: int = 2, **knobs: Any) -> dict[str, Any]:
    """A ``search_algorithm`` section: the algorithm, its own knobs, then the search-wide keys."""
    section: dict[str, Any] = {"type": algorithm}
    section.update(knobs)
    section.update(
        {
            "max_concurrent": max_concurrent,
            "reward_attr": "mean_accuracy",
            "num_samples": num_samples,
            "mode": "max",
            "save_model_count": 3,
        }
    )
    return section


class _TemplateDumper(yaml.SafeDumper):
    """``yaml.safe_dump``'s dumper, except that a list of scalars is written inline (``[32, 64]``).

    Sections and parameter entries stay in block style, which is how hand-written AutoSearch YAML
    looks; only the leaf lists of values go on one line.
    """


def _represent_list(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    inline = all(not isinstance(item, dict | list) for item in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=inline)


_TemplateDumper.add_representer(list, _represent_list)


@dataclass(frozen=True)
class _Template:
    """One template: its header comment and the YAML body as an ordered dict."""

    algorithm_type: str
    name: str
    header: str
    body: dict[str, Any]

    def render(self) -> str:
        text = yaml.dump(
            self.body, Dumper=_TemplateDumper, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
        )
        return f"{self.header}\n{text}"


def _doc(general: dict[str, Any], space: list[dict[str, Any]], algorithm: dict[str, Any]) -> dict[str, Any]:
    return {"general": general, "search_space": space, "search_algorithm": algorithm, "scheduler": _fifo()}


# --- hpo -------------------------------------------------------------------------------------------


def _hpo() -> list[_Template]:
    return [
        _Template(
            "hpo",
            "Anneal",
            "# Anneal.yaml: hyperparameter search by simulated annealing (hyperopt's anneal).\n"
            "# Each proposal perturbs one of the best trials so far: avg_best_idx is the mean of the\n"
            "# geometric distribution over score-sorted trials that picks it, shrink_coef how fast the\n"
            "# neighbourhood it samples from shrinks as trials accumulate.\n"
            "# Runs on OpenArts as algo_configs name anneal_search.\n" + _HPO_MAPPING,
            _doc(
                _general(),
                _lr_batch_space(),
                _search("anneal_search", num_samples=20, avg_best_idx=2.0, shrink_coef=0.1, seed=1),
            ),
        ),
        _Template(
            "hpo",
            "Bayes",
            "# Bayes.yaml: Bayesian optimisation with a Gaussian process (bayesian-optimization).\n"
            "# kind picks the acquisition function: ucb (upper confidence bound, exploration weight kappa),\n"
            "# ei (expected improvement) or poi (probability of improvement), both with margin xi.\n"
            "# Runs on OpenArts as algo_configs name bayes_opt_search.\n" + _HPO_MAPPING,
            _doc(
                _general(),
                _lr_batch_space(),
                _search("bayes_opt_search", num_samples=20, kind="ucb", kappa=2.5, xi=0.0, seed=1),
            ),
        ),
        _Template(
            "hpo",
            "DragonFly",
            "# DragonFly.yaml: Bayesian optimisation with the Dragonfly library (an ensemble of acquisition\n"
            "# functions chosen by a bandit; optimizer genetic evolves proposals instead).\n"
            "# domain euclidean treats every parameter as a real axis; cartesian allows mixed types.\n"
            + _not_run_note("dragonfly_search")
            + "# For a Gaussian-process search on OpenArts use Bayes.yaml (bayes_opt_search).\n",
            _doc(
                _general(),
                _lr_batch_space(),
                _search("dragonfly_search", num_samples=20, optimizer="bandit", domain="euclidean"),
            ),
        ),
        _Template(
            "hpo",
            "FixNorm",
            "# FixNorm.yaml: training with a fixed weight norm in place of weight decay, which removes the\n"
            "# weight-decay hyperparameter; what remains to tune is the learning rate, a one-dimensional\n"
            "# search that few trials cover well.\n"
            + _not_run_note("fixnorm_search")
            + "# On OpenArts the same one-parameter space can be searched with any of the three above.\n",
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "continuous_param", "name": "learning_rate", "start": 0.01, "stop": 1.0},
                        ]
                    }
                ],
                _search("fixnorm_search", num_samples=10),
            ),
        ),
        _Template(
            "hpo",
            "GridSearch",
            "# GridSearch.yaml: every combination of the listed points, once each; num_samples is the\n"
            "# number of repeats of the whole grid. A continuous_param is cut into num_samples evenly\n"
            "# spaced points (on OpenArts: search_params param_type discrete with lower_bound,\n"
            "# upper_bound and discrete_points_num).\n"
            + _not_run_note("grid_search")
            + "# Here the grid has 3 x 3 = 9 trials.\n",
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {
                                "type": "continuous_param",
                                "name": "learning_rate",
                                "start": 0.001,
                                "stop": 0.1,
                                "num_samples": 3,
                            },
                            {"type": "discrete_param", "name": "batch_size", "values": [32, 64, 128]},
                        ]
                    }
                ],
                _search("grid_search", num_samples=1),
            ),
        ),
        _Template(
            "hpo",
            "TPE",
            "# TPE.yaml: the tree-structured Parzen estimator (hyperopt's tpe).\n"
            "# The first n_initial_points trials are random; after that, trials are split at the gamma\n"
            "# quantile of the reward into good and bad, and the next proposal maximises l(x)/g(x), the\n"
            "# ratio of their densities. n_initial_points must stay below num_samples, or the whole\n"
            "# search is random (OpenArts' default for both is 20).\n"
            "# Runs on OpenArts as algo_configs name tpe_search.\n" + _HPO_MAPPING,
            _doc(
                _general(),
                _lr_batch_space(),
                _search("tpe_search", num_samples=20, gamma=0.25, n_initial_points=5, seed=1),
            ),
        ),
    ]


# --- nas, augment, compression ----------------------------------------------------------------------


def _nas() -> list[_Template]:
    return [
        _Template(
            "nas",
            "AutoBSS",
            "# AutoBSS.yaml: block stacking style search. Each value encodes a ResNet-like network as a\n"
            "# string: one group of digits per stage ('-' between stages), one digit per block.\n"
            + _not_run_note("autobss_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {
                                "type": "discrete_param",
                                "name": "resnet50",
                                "values": [
                                    "111-2111-211111-211",
                                    "1-11111111-2111121111-211111",
                                    "1-1112-1111111111121-11111112111",
                                    "11-111112-112-11111211",
                                ],
                            }
                        ]
                    }
                ],
                _search("autobss_search", num_samples=16),
            ),
        ),
        _Template(
            "nas",
            "AutoEvo",
            "# AutoEvo.yaml: evolutionary architecture search. A population of architectures (chains of\n"
            "# operations) is mutated and the best survive each generation.\n" + _not_run_note("autoevo_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "discrete_param", "name": "num_layers", "values": [8, 12, 16, 20]},
                            {
                                "type": "discrete_param",
                                "name": "operation",
                                "values": ["conv3x3", "conv5x5", "sep_conv3x3", "max_pool3x3", "skip_connect"],
                            },
                        ]
                    }
                ],
                _search("autoevo_search", num_samples=50, population_size=10, mutation_rate=0.2),
            ),
        ),
        _Template(
            "nas",
            "AutoTopo",
            "# AutoTopo.yaml: topology search over the connections between the blocks of a backbone\n"
            "# (which earlier outputs each block takes as its input).\n" + _not_run_note("autotopo_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "discrete_param", "name": "backbone", "values": ["resnet18", "resnet50"]},
                            {"type": "discrete_param", "name": "max_in_degree", "values": [1, 2, 3]},
                        ]
                    }
                ],
                _search("autotopo_search", num_samples=30),
            ),
        ),
        _Template(
            "nas",
            "MBNAS",
            "# MBNAS.yaml: architecture search in which a predictive model of the reward, trained on the\n"
            "# architectures evaluated so far, picks the next candidates.\n" + _not_run_note("mbnas_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "discrete_param", "name": "depth", "values": [2, 3, 4]},
                            {"type": "discrete_param", "name": "width_multiplier", "values": [0.5, 0.75, 1.0]},
                            {"type": "discrete_param", "name": "kernel_size", "values": [3, 5, 7]},
                        ]
                    }
                ],
                _search("mbnas_search", num_samples=30),
            ),
        ),
    ]


def _augment() -> list[_Template]:
    operations = ["ShearX", "TranslateY", "Rotate", "AutoContrast", "Equalize", "Solarize", "Posterize", "Color"]
    return [
        _Template(
            "augment",
            "AdvAutoAugment",
            "# AdvAutoAugment.yaml: adversarial AutoAugment. A policy network proposes augmentation\n"
            "# policies that make the training loss high, so the model trains on the hardest ones.\n"
            + _not_run_note("adv_auto_augment_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "discrete_param", "name": "operation", "values": operations},
                            {"type": "continuous_param", "name": "magnitude", "start": 0.0, "stop": 1.0},
                        ]
                    }
                ],
                _search("adv_auto_augment_search", num_samples=8, policies_per_batch=8),
            ),
        ),
        _Template(
            "augment",
            "AutoAugment",
            "# AutoAugment.yaml: search for an augmentation policy: sub-policies of two operations, each\n"
            "# with a probability of being applied and a magnitude.\n" + _not_run_note("auto_augment_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "discrete_param", "name": "operation", "values": operations},
                            {"type": "continuous_param", "name": "probability", "start": 0.0, "stop": 1.0},
                            {"type": "continuous_param", "name": "magnitude", "start": 0.0, "stop": 1.0},
                        ]
                    }
                ],
                _search("auto_augment_search", num_samples=50, sub_policies=5),
            ),
        ),
    ]


def _compression() -> list[_Template]:
    return [
        _Template(
            "compression",
            "AutoCompress",
            "# AutoCompress.yaml: search for how much to compress a trained model: the fraction of\n"
            "# channels pruned and the bit width of quantised weights, rewarding accuracy kept.\n"
            + _not_run_note("auto_compress_search"),
            _doc(
                _general(),
                [
                    {
                        "params": [
                            {"type": "continuous_param", "name": "prune_ratio", "start": 0.1, "stop": 0.7},
                            {"type": "discrete_param", "name": "quant_bits", "values": [4, 8, 16]},
                        ]
                    }
                ],
                _search("auto_compress_search", num_samples=20),
            ),
        ),
    ]


@cache
def _rendered() -> dict[str, dict[str, str]]:
    """``{algorithm_type: {algorithm_name: yaml text}}``, rendered once: the catalogue never changes."""
    catalogue: dict[str, dict[str, str]] = {family.type_en: {} for family in _FAMILIES}
    for template in (*_hpo(), *_nas(), *_augment(), *_compression()):
        catalogue[template.algorithm_type][template.name] = template.render()
    return catalogue


# --- wire ------------------------------------------------------------------------------------------


def catalogue_wire() -> dict[str, Any]:
    """The body of ``GET /v2/{project_id}/training-jobs/autosearch/yaml-templates`` (a fresh dict)."""
    rendered = _rendered()
    return {
        "yaml_templates": [
            {
                "algorithm_type_en": family.type_en,
                "algorithm_type_zh": family.type_zh,
                "algorithm_names": sorted(rendered[family.type_en]),
            }
            for family in _FAMILIES
        ]
    }


def _search_params_error(message: str, choices: list[str]) -> ApiError:
    listing = ", ".join(choices)
    return ApiError(
        400,
        "ModelArts.2826",
        f"SearchParamsError: {message}; valid choices are: {listing}.",
        solution=f"Use one of: {listing}.",
    )


def template_wire(algorithm_type: str, algorithm_name: str) -> dict[str, Any]:
    """The body of ``GET .../autosearch/yaml-templates/{algorithm_type}/{algorithm_name}``.

    Names match exactly (``hpo``/``Bayes``), as the catalogue spells them; anything else is a 400
    ``ModelArts.2826`` that lists the valid choices, so a client can correct itself from the error alone.
    """
    rendered = _rendered()
    family = rendered.get(algorithm_type)
    if family is None:
        raise _search_params_error(f"unknown algorithm type {algorithm_type!r}", [f.type_en for f in _FAMILIES])
    content = family.get(algorithm_name)
    if content is None:
        raise _search_params_error(
            f"unknown algorithm {algorithm_name!r} for algorithm type {algorithm_type!r}", sorted(family)
        )
    return {"file_name": f"{algorithm_name}.yaml", "content": content}
