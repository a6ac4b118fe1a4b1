"""The AutoSearch YAML template catalogue: its shape, and that every template is real, loadable YAML."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from openarts.autosearch.templates import catalogue_wire, template_wire
from openarts.core.errors import ApiError

EXPECTED = {
    "hpo": ["Anneal", "Bayes", "DragonFly", "FixNorm", "GridSearch", "TPE"],
    "nas": ["AutoBSS", "AutoEvo", "AutoTopo", "MBNAS"],
    "augment": ["AdvAutoAugment", "AutoAugment"],
    "compression": ["AutoCompress"],
}

ALL = [(family, name) for family, names in EXPECTED.items() for name in names]

HPO_TYPES = {
    "Bayes": "bayes_opt_search",
    "TPE": "tpe_search",
    "Anneal": "anneal_search",
    "GridSearch": "grid_search",
    "DragonFly": "dragonfly_search",
    "FixNorm": "fixnorm_search",
}


def _load(family: str, name: str) -> dict[str, Any]:
    document = yaml.safe_load(template_wire(family, name)["content"])
    assert isinstance(document, dict)
    return document


def test_catalogue_lists_the_four_families_in_order() -> None:
    body = catalogue_wire()
    assert list(body) == ["yaml_templates"]
    families = body["yaml_templates"]
    assert [f["algorithm_type_en"] for f in families] == list(EXPECTED)
    for family in families:
        assert set(family) == {"algorithm_type_en", "algorithm_type_zh", "algorithm_names"}
        assert family["algorithm_names"] == EXPECTED[family["algorithm_type_en"]]
        assert isinstance(family["algorithm_type_zh"], str) and family["algorithm_type_zh"]
    assert families[0]["algorithm_type_zh"] == "超参搜索"


def test_catalogue_is_a_fresh_copy_each_time() -> None:
    first = catalogue_wire()
    first["yaml_templates"][0]["algorithm_names"].append("Mine")
    assert catalogue_wire()["yaml_templates"][0]["algorithm_names"] == EXPECTED["hpo"]


@pytest.mark.parametrize(("family", "name"), ALL)
def test_every_template_is_yaml_with_the_four_sections(family: str, name: str) -> None:
    body = template_wire(family, name)
    assert set(body) == {"file_name", "content"}
    assert body["file_name"] == f"{name}.yaml"
    assert body["content"].startswith(f"# {name}.yaml: ")
    document = _load(family, name)
    assert list(document) == ["general", "search_space", "search_algorithm", "scheduler"]

    general = document["general"]
    for key in ("instance_per_trial", "gpu_per_instance", "cpu_per_instance"):
        assert isinstance(general[key], int) and general[key] >= 0

    groups = document["search_space"]
    assert isinstance(groups, list) and groups
    params = [param for group in groups for param in group["params"]]
    assert params
    for param in params:
        assert param["type"] in {"continuous_param", "discrete_param"}
        assert isinstance(param["name"], str) and param["name"]
        if param["type"] == "continuous_param":
            assert param["start"] < param["stop"]
        else:
            assert isinstance(param["values"], list) and len(param["values"]) >= 2

    algorithm = document["search_algorithm"]
    assert isinstance(algorithm["type"], str) and algorithm["type"]
    assert algorithm["mode"] in {"max", "min"}
    assert isinstance(algorithm["reward_attr"], str)
    for key in ("max_concurrent", "num_samples", "save_model_count"):
        assert isinstance(algorithm[key], int) and algorithm[key] >= 1
    assert document["scheduler"] == {"type": "FIFOScheduler"}


@pytest.mark.parametrize(("name", "algorithm_type"), sorted(HPO_TYPES.items()))
def test_hpo_templates_name_the_algorithm_they_stand_for(name: str, algorithm_type: str) -> None:
    algorithm = _load("hpo", name)["search_algorithm"]
    assert algorithm["type"] == algorithm_type
    content = template_wire("hpo", name)["content"]
    # Every hpo header says which of them OpenArts runs.
    assert "bayes_opt_search, tpe_search and anneal_search run on OpenArts" in content


def test_hpo_templates_carry_their_algorithms_parameters() -> None:
    bayes = _load("hpo", "Bayes")["search_algorithm"]
    assert bayes["kind"] in {"ucb", "ei", "poi"}
    assert isinstance(bayes["kappa"], float) and isinstance(bayes["xi"], float)

    tpe = _load("hpo", "TPE")["search_algorithm"]
    assert 0 < tpe["gamma"] < 1
    assert 1 <= tpe["n_initial_points"] < tpe["num_samples"]

    anneal = _load("hpo", "Anneal")["search_algorithm"]
    assert anneal["avg_best_idx"] > 0 and 0 < anneal["shrink_coef"] < 1

    for name in ("Bayes", "TPE", "Anneal"):
        assert isinstance(_load("hpo", name)["search_algorithm"]["seed"], int)
        assert f"Runs on OpenArts as algo_configs name {HPO_TYPES[name]}" in template_wire("hpo", name)["content"]
    for name in ("GridSearch", "DragonFly", "FixNorm"):
        assert f"does not run {HPO_TYPES[name]}" in template_wire("hpo", name)["content"]


def test_hpo_spaces_search_a_learning_rate() -> None:
    for name in EXPECTED["hpo"]:
        params = {p["name"]: p for group in _load("hpo", name)["search_space"] for p in group["params"]}
        assert params["learning_rate"]["type"] == "continuous_param"
        assert 0 < params["learning_rate"]["start"] < params["learning_rate"]["stop"] <= 1
    bayes = {p["name"]: p for group in _load("hpo", "Bayes")["search_space"] for p in group["params"]}
    assert bayes["batch_size"] == {"type": "discrete_param", "name": "batch_size", "values": [32, 64, 128, 256]}


def test_string_values_survive_the_round_trip() -> None:
    params = _load("nas", "AutoBSS")["search_space"][0]["params"]
    assert all(isinstance(value, str) for value in params[0]["values"])
    assert "1-11111111-2111121111-211111" in params[0]["values"]


@pytest.mark.parametrize("family", ["HPO", "search", ""])
def test_unknown_type_is_a_search_params_error(family: str) -> None:
    with pytest.raises(ApiError) as caught:
        template_wire(family, "Bayes")
    error = caught.value
    assert (error.status, error.code) == (400, "ModelArts.2826")
    assert error.message.startswith("SearchParamsError: ")
    assert "hpo, nas, augment, compression" in error.message
    assert error.solution and "hpo" in error.solution


@pytest.mark.parametrize(("family", "name"), [("hpo", "bayes"), ("hpo", "AutoBSS"), ("nas", "Bayes"), ("hpo", "")])
def test_unknown_name_is_a_search_params_error(family: str, name: str) -> None:
    with pytest.raises(ApiError) as caught:
        template_wire(family, name)
    error = caught.value
    assert (error.status, error.code) == (400, "ModelArts.2826")
    assert ", ".join(EXPECTED[family]) in error.message
    assert error.body()["error_code"] == "ModelArts.2826"
    assert "error_solution" in error.body()
