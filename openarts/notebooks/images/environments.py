"""What a registered image is on one machine: a local Python environment that has JupyterLab.

ModelArts registers container images from SWR (``swr.<region>.../<organisation>/<name>:<tag>``). OpenArts
cannot pull and run containers, so ``swr_path`` names a local environment instead::

    <absolute path>[:<tag>]

The path is a Python interpreter, or the prefix of a virtualenv or conda environment (whose interpreter
is ``<prefix>/bin/python``). The image's name is the environment's directory name (``/opt/envs/torch2``
gives ``torch2``), its namespace is ``local`` and its tag the suffix after the last ``:`` (``latest``
without one), so several environments of one name are versions of one image group.

An environment is usable when its interpreter imports ``jupyterlab`` and ``jupyter_server``. The check
runs the interpreter itself (an argv list, never a shell) with a timeout, outside any database
transaction: it takes a second or more.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import PurePosixPath

from openarts.core.errors import ApiError
from openarts.notebooks.images.errors import bad_value

LOCAL_NAMESPACE = "local"
DEFAULT_TAG = "latest"
MAX_SWR_PATH = 2048
CHECK_TIMEOUT_S = 60.0
TAG_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# [registry[:port]/]organisation/name[:tag]: what an SWR (or any registry) image reference looks like.
REGISTRY_PATH = re.compile(r"^([A-Za-z0-9.-]+(:[0-9]+)?/)?[^/\s:]+(/[^/\s:]+)*(:[^/\s]+)?$")
# Variables that would make the check see another environment than the one named.
_HIDDEN_VARIABLES = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "CONDA_PREFIX")
# Python 2 and 3 alike: what the environment reports about itself once JupyterLab imports.
CHECK_SCRIPT = (
    "import json, platform, sys\n"
    "import jupyterlab, jupyter_server\n"
    "print(json.dumps({'python': platform.python_version(), 'machine': platform.machine(),"
    " 'jupyterlab': getattr(jupyterlab, '__version__', ''),"
    " 'jupyter_server': getattr(jupyter_server, '__version__', '')}))\n"
)


@dataclass(frozen=True)
class EnvironmentRef:
    """Where a registered image's environment lives, as parsed from its ``swr_path``."""

    swr_path: str  # normalised, tag included: what the image shows
    location: str  # the path as given, normalised (an interpreter or an environment prefix)
    name: str
    namespace: str
    tag: str


@dataclass(frozen=True)
class Inspection:
    """What checking an environment found: ``python`` is set when the path named one."""

    ok: bool
    reason: str
    python: str = ""
    python_version: str = ""
    machine: str = ""
    jupyterlab_version: str = ""
    jupyter_server_version: str = ""


def _name_from(location: str) -> str:
    """The image name: the environment's directory, in the characters ModelArts allows in names."""
    path = PurePosixPath(location)
    # An interpreter inside <prefix>/bin names its environment by the prefix.
    prefix = path.parent.parent if path.parent.name == "bin" and path.name.startswith("python") else path
    raw = prefix.name.lower() or "python"
    name = re.sub(r"[^a-z0-9._-]+", "-", raw).strip("._-")
    return (name or "python")[:512]


def parse_swr_path(value: str) -> EnvironmentRef:
    """``<absolute path>[:<tag>]`` as an :class:`EnvironmentRef`; a clear 400 for anything else."""
    text = value.strip()
    if not text:
        raise bad_value("swr_path is empty: give the absolute path of a local Python environment.")
    if len(text) > MAX_SWR_PATH:
        raise bad_value(f"swr_path is longer than {MAX_SWR_PATH} characters.")
    if "\x00" in text or "\n" in text:
        raise bad_value("swr_path contains a control character.")
    if not text.startswith("/"):
        if ("/" in text or ":" in text) and REGISTRY_PATH.match(text):
            raise bad_value(
                f"swr_path {text} names a container image in a registry. OpenArts runs notebooks on this machine "
                "and cannot pull container images: give the absolute path of a local Python environment (a "
                "virtualenv or conda prefix, or its python interpreter) that has JupyterLab, optionally followed "
                "by :tag."
            )
        raise bad_value(
            f"swr_path {text} is not an absolute path: give the absolute path of a local Python environment "
            "(a virtualenv or conda prefix, or its python interpreter), optionally followed by :tag."
        )
    location, tag = text, DEFAULT_TAG
    head, sep, tail = text.rpartition(":")
    if sep and "/" not in tail:
        if not TAG_PATTERN.match(tail):
            raise bad_value(
                f"swr_path tag {tail!r} is not valid: up to 128 letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'."
            )
        location, tag = head, tail
    location = os.path.normpath(location)
    if location == "/":
        raise bad_value("swr_path / is not a Python environment.")
    return EnvironmentRef(
        swr_path=f"{location}:{tag}",
        location=location,
        name=_name_from(location),
        namespace=LOCAL_NAMESPACE,
        tag=tag,
    )


def find_python(location: str) -> tuple[str | None, str]:
    """(the interpreter at ``location``, "") or (None, why there is none).

    Symbolic links are kept as they are: a virtualenv's ``bin/python`` links to its base interpreter,
    and resolving the link would lose the environment.
    """
    if os.path.isdir(location):
        for candidate in ("bin/python", "bin/python3"):
            python = os.path.join(location, candidate)
            if os.path.isfile(python) and os.access(python, os.X_OK):
                return python, ""
        return None, f"{location} is a directory without bin/python: it is not a virtualenv or conda environment."
    if not os.path.exists(location):
        return None, f"{location} does not exist on the OpenArts server."
    if not os.path.isfile(location):
        return None, f"{location} is neither a Python interpreter nor an environment directory."
    if not os.access(location, os.X_OK):
        return None, f"{location} is not executable."
    return location, ""


def _check_environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _HIDDEN_VARIABLES}
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # the check must not write into the user's environment
    return env


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def inspect(location: str, timeout_s: float = CHECK_TIMEOUT_S) -> Inspection:
    """Check that the environment at ``location`` can run JupyterLab by importing it there."""
    python, why = find_python(location)
    if python is None:
        return Inspection(ok=False, reason=why)
    try:
        # S603: the argv is fixed but for the interpreter, which the caller named on purpose.
        done = subprocess.run(  # noqa: S603
            [python, "-c", CHECK_SCRIPT],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=_check_environment(),
            stdin=subprocess.DEVNULL,
            cwd="/",
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Inspection(ok=False, python=python, reason=f"{python} did not answer within {timeout_s:g} s.")
    except OSError as exc:
        return Inspection(ok=False, python=python, reason=f"{python} cannot be run: {exc.strerror or exc}.")
    if done.returncode != 0:
        detail = _last_line(done.stderr) or f"exit status {done.returncode}"
        return Inspection(
            ok=False,
            python=python,
            reason=f"{python} cannot import jupyterlab and jupyter_server ({detail}): install JupyterLab there.",
        )
    try:
        found = json.loads(_last_line(done.stdout))
        if not isinstance(found, dict):
            raise ValueError("not an object")
    except ValueError:
        return Inspection(ok=False, python=python, reason=f"{python} did not report its environment.")
    return Inspection(
        ok=True,
        reason="",
        python=python,
        python_version=str(found.get("python", ""))[:32],
        machine=str(found.get("machine", ""))[:32],
        jupyterlab_version=str(found.get("jupyterlab", ""))[:32],
        jupyter_server_version=str(found.get("jupyter_server", ""))[:32],
    )


def refused(ref: EnvironmentRef, inspection: Inspection) -> ApiError:
    return bad_value(f"swr_path {ref.swr_path} is not a usable environment: {inspection.reason}")
