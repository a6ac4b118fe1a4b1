"""The model package contract (reference section 3): config.json and the files of ``model/``.

Everything here reads files and JSON; nothing imports or runs the model's code (that happens only in
a service instance's own process). ``customize_service.py`` is parsed with ``ast`` to catch a syntax
error or a missing inference class at publish time rather than at deploy time.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

from openarts.models import errors

# Every engine ModelArts names, and the ones OpenArts serves (the others are refused at create).
KNOWN_TYPES = (
    "TensorFlow",
    "MXNet",
    "Caffe",
    "Spark_MLlib",
    "Scikit_Learn",
    "XGBoost",
    "Image",
    "PyTorch",
    "Template",
    "MindSpore",
    "Custom",
)
SERVED_TYPES = ("Scikit_Learn", "XGBoost", "PyTorch", "Custom")
# The engine package a type needs in the model's Python, and the model files it reads.
ENGINE_PACKAGES = {"Scikit_Learn": "sklearn", "XGBoost": "xgboost", "PyTorch": "torch"}
# XGBoost: a joblib/pickle dump of its scikit-learn wrapper, or Booster.save_model (ModelArts' *.m,
# JSON or UBJSON); PyTorch: torch.save / torch.jit.save (*.pt, *.pth) or torch.export.save (*.pt2).
# The runtime's openarts_model_server.py has the same table (it imports nothing of OpenArts).
MODEL_FILE_SUFFIXES = {
    "Scikit_Learn": (".m", ".pkl", ".joblib"),
    "XGBoost": (".m", ".model", ".ubj", ".pkl", ".joblib", ".json"),
    "PyTorch": (".pt", ".pth", ".pt2"),
}
NOT_MODEL_FILES = ("config.json",)  # next to an XGBoost *.json model (.json comes last: labels files are JSON too)
SCRIPT = "customize_service.py"
# The base classes of reference 3.3 that OpenArts' runtime provides (openarts/inference/runtime).
BASE_CLASSES = ("XgSklServingBaseService", "PTServingBaseService", "SingleNodeService", "BaseService")
CONTENT_TYPES = ("application/json", "multipart/form-data")
RESTRAINTS = {"pip": ("EXACT", "ATLEAST", "ATMOST"), "conda": ("EXACT", "ATLEAST", "ATMOST")}
INSTALLERS = ("pip", "conda", "yum", "apt-get")


class PackageError(Exception):
    """The package breaks the contract: the model ends ``failed`` with this message."""


def canonical_type(value: str) -> str | None:
    """The type as ModelArts spells it (lists show it in lower case: accept any case)."""
    return next((known for known in KNOWN_TYPES if known.lower() == value.lower()), None)


@functools.cache
def engine_available(model_type: str) -> bool:
    """Whether this server's Python (the models' runtime) has the type's engine package installed."""
    package = ENGINE_PACKAGES.get(model_type)
    return package is None or importlib.util.find_spec(package) is not None


def require_served(model_type: str) -> None:
    """Refuse (400 ``ModelArts.3053``) a type OpenArts cannot serve, saying why."""
    if model_type not in SERVED_TYPES:
        raise errors.type_unsupported(
            model_type,
            f"OpenArts serves {', '.join(SERVED_TYPES)} models as local processes; {model_type} needs ModelArts' "
            "own images.",
        )
    if not engine_available(model_type):
        package = ENGINE_PACKAGES[model_type]
        raise errors.type_unsupported(
            model_type,
            f"the Python that runs models has no '{package}' package. Install it next to OpenArts "
            f"(pip install {'scikit-learn' if package == 'sklearn' else package}) and restart the server.",
        )


def check_dependencies(dependencies: Any) -> None:
    """``[{installer, packages: [{package_name, package_version, restraint}]}]`` (3040/3041)."""
    if dependencies is None:
        return
    if not isinstance(dependencies, list):
        raise errors.bad_config("dependencies must be a list.")
    for entry in dependencies:
        if not isinstance(entry, dict):
            raise errors.bad_config("each dependencies entry must be an object.")
        installer = str(entry.get("installer") or "pip")
        if installer not in INSTALLERS:
            raise errors.bad_config(f"dependencies installer {installer} is not one of {', '.join(INSTALLERS)}.")
        packages = entry.get("packages") or []
        if not isinstance(packages, list):
            raise errors.bad_config("dependencies packages must be a list.")
        for package in packages:
            if not isinstance(package, dict) or not package.get("package_name"):
                raise errors.bad_config("each package needs a package_name.")
            restraint = package.get("restraint")
            if restraint is not None and restraint not in RESTRAINTS.get(installer, ("EXACT",)):
                raise errors.bad_restraint(installer, str(restraint))


def check_apis(apis: Any) -> None:
    """config.json's ``apis``: objects with request/response; tolerant of the official samples' typos."""
    if apis is None:
        return
    if not isinstance(apis, list):
        raise errors.bad_config("apis must be a list.")
    for api in apis:
        if not isinstance(api, dict):
            raise errors.bad_config("each apis entry must be an object.")
        method = str(api.get("method") or "post").lower()
        if method != "post":
            raise errors.bad_config(f"apis method {method} is not supported: inference is POST only.")
        for side in ("request", "response"):
            part = api.get(side)
            if part is None:
                continue
            if not isinstance(part, dict):
                raise errors.bad_config(f"apis {side} must be an object.")
            content_type = str(part.get("Content-type") or part.get("Content-Type") or "application/json")
            # "applicaton/json" appears in ModelArts' own samples: accept the misspelling.
            if not any(content_type.replace("applicaton", "application").startswith(t) for t in CONTENT_TYPES):
                raise errors.bad_config(f"apis {side} Content-type {content_type} is not supported.")
            if "data" in part and not isinstance(part["data"], dict):
                raise errors.bad_config(f"apis {side} data must be a JSON schema object.")


def parse_config(raw: bytes, what: str = "config.json") -> dict[str, Any]:
    """config.json (or ``initial_config``) as a dict, checked; raises ``ApiError`` 3015/3016/3040."""
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise errors.bad_config(f"{what} is not valid JSON ({exc}).") from None
    if not isinstance(config, dict):
        raise errors.bad_config(f"{what} must hold a JSON object.")
    model_type = config.get("model_type")
    if model_type is not None and (not isinstance(model_type, str) or canonical_type(model_type) is None):
        raise errors.bad_config(f"model_type {model_type!r} in {what} is not one of {', '.join(KNOWN_TYPES)}.")
    algorithm = config.get("model_algorithm")
    if algorithm is not None and not isinstance(algorithm, str):
        raise errors.bad_config(f"model_algorithm in {what} must be a string.")
    check_apis(config.get("apis"))
    check_dependencies(config.get("dependencies"))
    return config


def check_model_dir(model_dir: Path, model_type: str) -> int:
    """The copied ``model/`` folder against the engine's rules; its size in bytes."""
    script = model_dir / SCRIPT
    if script.is_file():
        _check_script(script)
    elif model_type not in ("Scikit_Learn", "XGBoost"):
        raise PackageError(f"{model_type} models need model/{SCRIPT} with the inference class.")
    suffixes = MODEL_FILE_SUFFIXES.get(model_type)
    if suffixes is not None:
        found = next(
            (
                files
                for suffix in suffixes
                if (files := sorted(p.name for p in model_dir.glob("*" + suffix) if p.name not in NOT_MODEL_FILES))
            ),
            [],
        )
        if not found and (model_type != "PyTorch" or not script.is_file()):
            raise PackageError(
                f"No {model_type} model file is stored in path model/ (it should be saved ending with "
                f"{' or '.join(suffixes)})."
            )
        if len(found) > 1:
            raise PackageError(
                f"Failed to calculate the model size. More than one {model_type} model file is stored in path "
                f"model/: {', '.join(found)}."
            )
    return sum(p.stat().st_size for p in model_dir.rglob("*") if p.is_file() and not p.is_symlink())


def _check_script(script: Path) -> None:
    try:
        tree = ast.parse(script.read_bytes(), filename=SCRIPT)
    except SyntaxError as exc:
        raise PackageError(f"{SCRIPT} has a syntax error at line {exc.lineno}: {exc.msg}.") from None
    except ValueError as exc:
        raise PackageError(f"{SCRIPT} cannot be read: {exc}.") from None
    classes = [node for node in tree.body if isinstance(node, ast.ClassDef)]
    if not classes:
        raise PackageError(f"{SCRIPT} defines no class: it needs one derived from {', '.join(BASE_CLASSES)}.")
