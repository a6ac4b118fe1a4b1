"""XGBoost and PyTorch models from real packages: created, published, deployed as real-time services and
called through their access_address, the answers checked against the models called here directly.

Each test deploys its models once (one instance each, the tiny custom spec) and calls every model of a
service through the gateway's weighted routing.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import pickle
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from openarts.inference import RUNTIME_DIR
from tests.services.support import (
    FEATURES,
    Api,
    calls_per_model,
    deploy,
    even_entries,
    model_folder,
    publish_all,
    wait_service,
)
from tests.support.server import LiveServer

BUCKET = "fw-bucket"
TORCH_MISSING = "PyTorch models need torch (the test extra: pip install -e '.[test]')"


@pytest.fixture(autouse=True)
def _one_database(backend: str) -> None:
    if backend != "sqlite":
        pytest.skip("the model runtimes, not the database, are under test here: once, on SQLite")


# One typical flower of each iris class: every model here agrees on them.
ROWS = [[5.0, 3.4, 1.5, 0.2], [6.5, 2.8, 4.6, 1.5], [7.2, 3.0, 6.1, 2.2]]


def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris  # type: ignore[import-untyped]

    return load_iris(return_X_y=True)


def flat(values: Any) -> list[float]:
    """Nested lists of numbers as one flat list (for ``pytest.approx``)."""
    if isinstance(values, list):
        return [number for value in values for number in flat(value)]
    return [float(values)]


def running(api: Api, service_id: str, cleanup: list[str]) -> dict[str, Any]:
    cleanup.append(service_id)
    service = wait_service(api, service_id, "running", "failed")
    assert service["status"] == "running", service["error_msg"]
    return service


# --- XGBoost ----------------------------------------------------------------------------------------------------


def xgboost_config(**extra: Any) -> dict[str, Any]:
    """ModelArts' XGBoost example config.json (its typos and array-form ``items`` included)."""
    return {
        "model_type": "XGBoost",
        "model_algorithm": "xgboost_iris_test",
        "runtime": "python3.6",
        "metrics": {"f1": 0.345294, "accuracy": 0.462963, "precision": 0.338977, "recall": 0.351852},
        "apis": [
            {
                "procotol": "http",
                "url": "/",
                "method": "post",
                "request": {
                    "Content-type": "applicaton/json",
                    "data": {
                        "type": "object",
                        "properties": {
                            "data": {
                                "type": "object",
                                "properties": {
                                    "req_data": {"items": [{"type": "object", "properties": {}}], "type": "array"}
                                },
                            }
                        },
                    },
                },
                "response": {"Content-type": "applicaton/json", "data": {"type": "object"}},
            }
        ],
        "dependencies": [
            {
                "installer": "pip",
                "packages": [{"restraint": "ATLEAST", "package_version": "0.80", "package_name": "xgboost"}],
            }
        ],
        **extra,
    }


# ModelArts' XGBoost customize_service.py, as its example writes it for the newest request body
# ({"req_data": [...]} without the outer "data"), with the feature names today's XGBoost keeps in the model.
XGBOOST_SERVICE = """
# coding:utf-8
import collections
import json

import xgboost as xgb
from model_service.python_model_service import XgSklServingBaseService


class UserService(XgSklServingBaseService):
    def _preprocess(self, data):
        list_data = []
        json_data = json.loads(data, object_pairs_hook=collections.OrderedDict)
        for element in json_data["req_data"]:
            array = []
            for each in element:
                array.append(element[each])
            list_data.append(array)
        return list_data

    def _inference(self, data):
        xg_model = xgb.Booster(model_file=self.model_path)
        pre_data = xgb.DMatrix(data, feature_names=xg_model.feature_names)
        return xg_model.predict(pre_data).tolist()

    def _postprocess(self, data):
        return [{"predictresult": element} for element in data]
"""


def xgboost_packages(server: LiveServer, unique: Callable[[str], str]) -> tuple[dict[str, str], list[Any], list[Any]]:
    """Five packages of models trained on iris with the feature names a DataFrame gives: four for the default
    service (Booster.save_model to ``xgboost.m`` as ModelArts' example and to JSON; an XGBClassifier dumped
    with joblib and with pickle) and one with customize_service.py (a multi:softprob Booster in UBJSON).
    Returns {package: source_location}, the labels of ROWS and their class probabilities."""
    import joblib  # type: ignore[import-untyped]

    xgb = pytest.importorskip(
        "xgboost", reason="XGBoost models need xgboost (the test extra: pip install -e '.[test]')"
    )
    features, labels = iris()
    train = xgb.DMatrix(features, label=labels, feature_names=list(FEATURES), nthread=1)
    base = {"num_class": 3, "max_depth": 2, "nthread": 1}
    booster = xgb.train({**base, "objective": "multi:softmax"}, train, 10)
    probabilities = xgb.train({**base, "objective": "multi:softprob"}, train, 10)
    classifier = xgb.XGBClassifier(n_estimators=10, max_depth=2, n_jobs=1).fit(features, labels)
    classifier.get_booster().feature_names = list(FEATURES)  # as fitted on a pandas DataFrame
    test = xgb.DMatrix(ROWS, feature_names=list(FEATURES))
    expected = booster.predict(test).tolist()
    assert classifier.predict(ROWS).tolist() == expected == [0, 1, 2]
    # Taken by position, the columns in reverse order would give other answers (the service must go by name).
    assert booster.predict(xgb.DMatrix([row[::-1] for row in ROWS], feature_names=list(FEATURES))).tolist() != expected

    sources: dict[str, str] = {}

    def package(name: str, write: Callable[[Path], object], script: str | None = None) -> None:
        prefix = unique(name)
        folder = model_folder(server, BUCKET, prefix)
        write(folder)
        (folder / "config.json").write_text(json.dumps(xgboost_config()))
        if script is not None:
            (folder / "customize_service.py").write_text(script)
        sources[name] = f"/{BUCKET}/{prefix}/"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Saving model in the UBJSON format as default" for *.m
        package("xgb-m", lambda folder: booster.save_model(str(folder / "xgboost.m")))
    package("xgb-json", lambda folder: booster.save_model(str(folder / "xgboost.json")))
    package("xgb-joblib", lambda folder: joblib.dump(classifier, folder / "model.m"))
    package("xgb-pickle", lambda folder: (folder / "model.pkl").write_bytes(pickle.dumps(classifier)))
    package("xgb-script", lambda folder: probabilities.save_model(str(folder / "model.ubj")), XGBOOST_SERVICE)
    return sources, expected, probabilities.predict(test).tolist()


def test_xgboost_models_answer_predictions(api: Api, unique: Callable[[str], str], cleanup: list[str]) -> None:
    sources, labels, probabilities = xgboost_packages(api.server, unique)
    ids = dict(
        zip(sources, publish_all(api, [(unique(name), source) for name, source in sources.items()]), strict=True)
    )
    defaults = [ids[name] for name in ("xgb-m", "xgb-json", "xgb-joblib", "xgb-pickle")]
    # Both services deploy at once; every instance loads its model before it answers /health.
    default_id = deploy(api, unique("xgb-default"), even_entries(defaults))
    script_id = deploy(api, unique("xgb-script"), even_entries([ids["xgb-script"]]))
    default = running(api, default_id, cleanup)
    script = running(api, script_id, cleanup)

    # The default service: ModelArts' body, the newest one (no outer "data"), and keys in another order
    # (the model's feature names place them), each sent to every model.
    named = [dict(zip(FEATURES, row, strict=True)) for row in ROWS]
    bodies: list[dict[str, Any]] = [
        {"meta": {"uuid": "u-1"}, "data": {"req_data": named}},
        {"req_data": named},
        {"data": {"req_data": [dict(reversed(row.items())) for row in named]}},
    ]
    answers = [{"predictresult": label} for label in labels]
    for body in bodies:
        for _ in defaults:
            answer = api.call("POST", default["access_address"], body)
            assert answer.status_code == 200, answer.text
            wanted: dict[str, Any] = {"data": {"resp_data": answers}}
            if "meta" in body:
                wanted["meta"] = body["meta"]
            assert answer.json() == wanted
    calls = calls_per_model(api, default_id)
    assert sorted(calls) == sorted(defaults) and all(count >= 1 for count in calls.values()), calls
    assert sum(calls.values()) == len(bodies) * len(defaults)
    # A row the model cannot take (a string): the runtime's 400.
    bad = api.call("POST", default["access_address"], {"data": {"req_data": [{"sepal_length": "wide"}]}})
    assert bad.status_code == 400 and bad.json()["erno"] == "PY.0105", bad.text

    # customize_service.py: the raw body reaches _preprocess, model_path is the model file.
    answer = api.call("POST", script["access_address"], {"req_data": named})
    assert answer.status_code == 200, answer.text
    rows = answer.json()["data"]["resp_data"]
    assert [row["predictresult"] for row in rows] == [pytest.approx(p, rel=1e-6) for p in probabilities]
    assert [max(range(3), key=row["predictresult"].__getitem__) for row in rows] == [0, 1, 2]


# --- PyTorch ----------------------------------------------------------------------------------------------------


def pytorch_config() -> dict[str, Any]:
    return {
        "model_type": "PyTorch",
        "model_algorithm": "iris_classification",
        "runtime": "pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64",
        "apis": [
            {
                "procotol": "http",
                "url": "/",
                "method": "post",
                "request": {
                    "Content-type": "application/json",
                    "data": {
                        "type": "object",
                        "properties": {"inputs": {"type": "array", "items": {"type": "array"}}},
                        "required": ["inputs"],
                    },
                },
                "response": {"Content-type": "application/json", "data": {"type": "object"}},
            }
        ],
    }


# The network, as the package's helper module (and built the same way by the test).
NET_SOURCE = """
import torch


def Net():
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
"""

# ModelArts' PyTorch example: a TorchScript model loaded in __init__, and all three hooks.
SCRIPTED_SERVICE = """
import torch

import log
from model_service.pytorch_model_service import PTServingBaseService

logger = log.getLogger(__name__)


class ScriptedService(PTServingBaseService):
    def __init__(self, model_name, model_path):
        super(ScriptedService, self).__init__(model_name, model_path)
        self.model = torch.jit.load(model_path, map_location="cpu")
        self.model.eval()
        logger.info("loaded %s", model_path)

    def _preprocess(self, data):
        return {k: torch.tensor(v, dtype=torch.float32) for k, v in data.items()}

    def _inference(self, data):
        result = {}
        with torch.no_grad():
            for k, v in data.items():
                result[k] = self.model(v)
        return result

    def _postprocess(self, data):
        return {k: v.tolist() for k, v in data.items()}
"""

# A state_dict: the network comes from a helper module next to the script; the base's hooks do the rest.
STATE_DICT_SERVICE = """
import os

import torch

from model_service.pytorch_model_service import PTServingBaseService
from net import Net


class StateDictService(PTServingBaseService):
    def __init__(self, model_name, model_path):
        super().__init__(model_name, model_path)
        assert os.path.isfile(self.model_path) and self.model_path.endswith("weights.pth"), self.model_path
        self.model = Net()
        self.model.load_state_dict(torch.load(model_path, map_location="cpu"))
        self.model.eval()
"""

# Nothing overridden: the base loads the TorchScript file and runs it on the JSON body's values.
DEFAULT_SERVICE = """
from model_service.pytorch_model_service import PTServingBaseService


class DefaultService(PTServingBaseService):
    pass
"""


@pytest.fixture(scope="module")
def torch_net() -> Any:
    """A tiny network trained on iris here (60 steps), in eval mode."""
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)
    features, labels = iris()
    namespace: dict[str, Any] = {}
    exec(NET_SOURCE, namespace)  # noqa: S102 - the package's own helper, so both build the same network
    torch.manual_seed(0)
    net = namespace["Net"]()
    inputs = torch.tensor(features, dtype=torch.float32)
    targets = torch.tensor(labels)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a network this small only loses time to more threads
    try:
        for _ in range(60):
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(net(inputs), targets).backward()
            optimiser.step()
    finally:
        torch.set_num_threads(threads)
    return net.eval()


def test_pytorch_models_answer_like_the_model(
    api: Api, unique: Callable[[str], str], cleanup: list[str], torch_net: Any
) -> None:
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)

    with torch.no_grad():
        logits = torch_net(torch.tensor(ROWS)).tolist()
    assert [max(range(3), key=row.__getitem__) for row in logits] == [0, 1, 2]

    sources: dict[str, str] = {}

    def package(name: str, script: str, write: Callable[[Path], object]) -> None:
        prefix = unique(name)
        folder = model_folder(api.server, BUCKET, prefix)
        (folder / "config.json").write_text(json.dumps(pytorch_config()))
        (folder / "customize_service.py").write_text(script)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit is deprecated, still loads
            write(folder)
        sources[name] = f"/{BUCKET}/{prefix}/"

    def state_dict(folder: Path) -> None:
        torch.save(torch_net.state_dict(), folder / "weights.pth")
        (folder / "net.py").write_text(NET_SOURCE)

    package("pt-script", SCRIPTED_SERVICE, lambda f: torch.jit.save(torch.jit.script(torch_net), str(f / "model.pt")))
    package("pt-state", STATE_DICT_SERVICE, state_dict)
    package(
        "pt-default",
        DEFAULT_SERVICE,
        lambda f: torch.jit.save(torch.jit.trace(torch_net, torch.zeros(1, 4)), str(f / "model.pt")),
    )
    ids = publish_all(api, [(unique(name), source) for name, source in sources.items()])
    service = running(api, deploy(api, unique("pt-svc"), even_entries(ids)), cleanup)

    for _ in range(2 * len(ids)):
        answer = api.call("POST", service["access_address"], {"inputs": ROWS})
        assert answer.status_code == 200, answer.text
        assert list(answer.json()) == ["inputs"]
        assert flat(answer.json()["inputs"]) == pytest.approx(flat(logits), rel=1e-5, abs=1e-6)
    calls = calls_per_model(api, service["service_id"])
    assert sorted(calls) == sorted(ids) and all(count >= 1 for count in calls.values()), calls
    # The apis schema refuses a body without "inputs"; a row of the wrong width fails in the model.
    missing = api.call("POST", service["access_address"], {"rows": ROWS})
    assert missing.status_code == 400 and missing.json()["erno"] == "MR.0101", missing.text
    for _ in ids:
        narrow = api.call("POST", service["access_address"], {"inputs": [[1.0, 2.0]]})
        assert narrow.status_code == 500 and narrow.json()["erno"] == "MR.0105", narrow.text


# --- the PyTorch base class in this process ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def pytorch_model_service() -> Iterator[ModuleType]:
    """The runtime's ``model_service.pytorch_model_service``, imported under a private package name (the
    model processes import it as ``model_service``; that name stays free here)."""
    name = "_openarts_runtime_model_service"
    spec = importlib.util.spec_from_file_location(
        name,
        RUNTIME_DIR / "model_service" / "__init__.py",
        submodule_search_locations=[str(RUNTIME_DIR / "model_service")],
    )
    assert spec is not None and spec.loader is not None
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    try:
        spec.loader.exec_module(package)
        yield importlib.import_module(f"{name}.pytorch_model_service")
    finally:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def test_pytorch_base_loads_what_it_can(tmp_path: Path, torch_net: Any, pytorch_model_service: ModuleType) -> None:
    torch = pytest.importorskip("torch", reason=TORCH_MISSING)

    base = pytorch_model_service.PTServingBaseService
    with torch.no_grad():
        logits = torch_net(torch.tensor(ROWS)).tolist()
    # A whole pickled module (torch.save(model)), found in the model folder and run by the default hooks.
    whole = tmp_path / "whole"
    whole.mkdir()
    torch.save(torch_net, whole / "model.pth")
    service = base("iris", str(whole))
    assert service.model_path == str(whole / "model.pth")
    answer = service.inference({"a": ROWS, "b": ROWS[0]})
    assert flat(answer["a"]) == pytest.approx(flat(logits), rel=1e-5, abs=1e-6)
    assert flat(answer["b"]) == pytest.approx(logits[0], rel=1e-5, abs=1e-6)
    json.dumps(answer)  # plain lists
    # A state_dict needs the network's class: the error says what to write.
    weights = tmp_path / "weights"
    weights.mkdir()
    torch.save(torch_net.state_dict(), weights / "weights.pt")
    with pytest.raises(RuntimeError, match="holds a state_dict"):
        base("iris", str(weights)).inference({"a": ROWS})
