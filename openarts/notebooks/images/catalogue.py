"""The built-in images: a small fixed catalogue that every project sees.

ModelArts' built-in images are container images in its own SWR organisation (``atelier``). On one
machine they all map to the server's own Python environment, which has JupyterLab and Jupyter Server
(they are OpenArts dependencies), so a notebook made from any of them starts without further setup.
Their names, tags and ids are those of ModelArts' public ``notebook2.0`` catalogue; the multi-kernel CPU
image has the id of the manual's create-notebook example, so that example runs as written.
"""

from __future__ import annotations

import platform
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata

BUILD_IN = "BUILD_IN"
# Not a pullable registry: an SWR-shaped host that says where these images really come from.
SWR_HOST = "swr.openarts.local"
NAMESPACE = "atelier"
# ModelArts' catalogue entries all carry the time they were published; so do these.
PUBLISHED_AT_MS = 1638841805439
RUNS_ON = "Runs on the OpenArts server's own Python environment (JupyterLab included)."


@dataclass(frozen=True)
class BuiltIn:
    id: str
    group_id: str  # each built-in image is the one version of its own group
    name: str
    repository: str  # the SWR repository name, which ModelArts' built-ins spell apart from their name
    tag: str
    description: str
    resource_categories: tuple[str, ...]
    service_type: str = "COMMON"

    @property
    def swr_path(self) -> str:
        return f"{SWR_HOST}/{NAMESPACE}/{self.repository}:{self.tag}"


BUILT_INS: tuple[BuiltIn, ...] = (
    BuiltIn(
        id="e1a07296-22a8-4f05-8bc8-e936c8e54090",
        group_id="2ff7ce21-a0e2-4ba5-8a23-e911d6101b86",
        name="notebook2.0-mul-kernel-cpu-cp36",
        repository="notebook2.0-mul-kernel-cpu-cp36",
        tag="3.3.2-release_v1",
        description=f"Multi-kernel CPU image for general development. {RUNS_ON}",
        resource_categories=("CPU",),
    ),
    BuiltIn(
        id="278e88d1-5b71-4766-8502-b3ba72e824d9",
        group_id="d887b438-6d14-4e71-80ea-e5a0ed38b10e",
        name="pytorch1.8-cuda10.2-cudnn7-ubuntu18.04",
        repository="pytorch_1_8",
        tag="pytorch_1.8.0-cuda_10.2-py_3.7-ubuntu_18.04-x86_64-20220926104358-041ba2e",
        description=f"CPU and GPU general algorithm development and training, named after PyTorch 1.8. {RUNS_ON}",
        resource_categories=("CPU", "GPU"),
    ),
    BuiltIn(
        id="06e7be25-277c-4e1d-bf2f-1ce07f6fe75e",
        group_id="e655478d-d35e-4ba7-a739-65943f8f9a13",
        name="tensorflow2.1-cuda10.1-cudnn7-ubuntu18.04",
        repository="tensorflow_2_1",
        tag="tensorflow_2.1.0-cuda_10.1-py_3.7-ubuntu_18.04-x86_64-20221121111529-d65d817",
        description=f"CPU and GPU general algorithm development and training, named after TensorFlow 2.1. {RUNS_ON}",
        resource_categories=("CPU", "GPU"),
    ),
    BuiltIn(
        id="4474b99e-1664-4564-b33f-402e7fb4c292",
        group_id="98867855-a3ce-46e4-a1ce-5e8116ec2d33",
        name="mindspore1.7.0-py3.7-ubuntu18.04",
        repository="mindspore_1_7_0",
        tag="mindspore_1.7.0-cpu-py_3.7-ubuntu_18.04-x86_64-20220702120711-9a2b0c1",
        description=f"CPU algorithm development and training, named after MindSpore 1.7.0. {RUNS_ON}",
        resource_categories=("CPU",),
    ),
)

_BY_ID = {image.id: image for image in BUILT_INS}
_BY_GROUP = {image.group_id: image for image in BUILT_INS}


def built_in(image_id: str) -> BuiltIn | None:
    return _BY_ID.get(image_id)


def built_in_group(group_id: str) -> BuiltIn | None:
    return _BY_GROUP.get(group_id)


def server_python() -> str:
    """The interpreter every built-in image runs on: the server's own."""
    return sys.executable


def machine_arch(machine: str | None = None) -> str:
    """ModelArts' arch enum for a ``platform.machine()`` value: X86_64 or AARCH64 (else the value upper-cased)."""
    value = (machine if machine is not None else platform.machine()).lower()
    if value in ("x86_64", "amd64"):
        return "X86_64"
    if value in ("aarch64", "arm64"):
        return "AARCH64"
    return value.upper()


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


@dataclass(frozen=True)
class ServerEnvironment:
    python_version: str
    jupyterlab_version: str
    jupyter_server_version: str


@cache
def server_environment() -> ServerEnvironment:
    """Versions of the server's own environment, read from package metadata (no import of JupyterLab)."""
    return ServerEnvironment(
        python_version=platform.python_version(),
        jupyterlab_version=_version("jupyterlab"),
        jupyter_server_version=_version("jupyter-server"),
    )
