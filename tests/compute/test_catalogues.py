"""Flavors and engines: ModelArts' wire shapes, GPU flavors only with GPUs, registered interpreters."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from openarts.compute import engines, flavors
from openarts.compute.capacity import detect_gpus
from openarts.config import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url="sqlite://", compute_cpus=16, compute_memory_gb=128)


@pytest.fixture
def fresh_gpu_detection() -> Iterator[None]:
    detect_gpus.cache_clear()
    yield
    detect_gpus.cache_clear()


def test_cpu_flavors_have_modelarts_ids_and_wire_shape(settings: Settings) -> None:
    catalogue = {flavor.flavor_id: flavor for flavor in flavors.catalogue(settings)}
    assert {"modelarts.vm.cpu.2u", "modelarts.vm.cpu.4u", "modelarts.vm.cpu.8u"} <= set(catalogue)
    eight = catalogue["modelarts.vm.cpu.8u"]
    assert (eight.cpu_cores, eight.memory_gb, eight.flavor_type) == (8, 32, "CPU")
    wire = catalogue["modelarts.vm.cpu.2u"].to_wire()
    assert wire["flavor_id"] == "modelarts.vm.cpu.2u"
    assert wire["flavor_name"] == "CPU: 2vCPUs 8GB"
    assert wire["flavor_type"] == "CPU"
    assert wire["max_num"] == 1
    assert wire["billing"] == {"code": "modelarts.vm.cpu.2u", "unit_num": 1}
    assert wire["attributes"] == {}
    info = wire["flavor_info"]
    assert info["max_num"] == 1
    assert info["cpu"]["core_num"] == 2 and info["cpu"]["arch"] in ("x86", "arm")
    assert info["memory"] == {"size": 8, "unit": "GB"}
    assert info["disk"]["unit"] == "GB" and info["disk"]["size"] > 0
    assert "gpu" not in info
    json.dumps(wire)  # plain JSON types only


def test_no_gpu_flavors_without_nvidia_smi(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_gpu_detection: None
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert detect_gpus() == ()
    assert all(flavor.flavor_type == "CPU" for flavor in flavors.catalogue(settings))
    assert flavors.find_flavor(settings, "modelarts.vm.gpu.1u") is None


def test_gpu_flavors_where_nvidia_smi_reports_gpus(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_gpu_detection: None
) -> None:
    # A stand-in nvidia-smi (this machine has no GPU): it prints what the real one prints for two H100s.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "nvidia-smi"
    fake.write_text("#!/bin/sh\necho '0, NVIDIA H100 80GB HBM3, 81559'\necho '1, NVIDIA H100 80GB HBM3, 81559'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    gpu_flavors = [flavor for flavor in flavors.catalogue(settings) if flavor.flavor_type == "GPU"]
    assert [flavor.flavor_id for flavor in gpu_flavors] == ["modelarts.vm.gpu.1u", "modelarts.vm.gpu.2u"]
    two = gpu_flavors[1]
    assert (two.gpu_count, two.cpu_cores, two.memory_gb) == (2, 16, 64)
    assert two.demand("job").gpus == 2
    gpu = two.to_wire()["flavor_info"]["gpu"]
    assert gpu == {"unit_num": 2, "product_name": "NVIDIA-H100-80GB-HBM3", "memory": "80GB"}


def test_find_flavor(settings: Settings) -> None:
    found = flavors.find_flavor(settings, "modelarts.vm.cpu.4u")
    assert found is not None and found.cpu_cores == 4
    assert flavors.find_flavor(settings, "modelarts.vm.cpu.3u") is None
    assert flavors.find_flavor(settings, "") is None


def test_default_engine_is_the_servers_interpreter(settings: Settings) -> None:
    engine = engines.default_engine(settings)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert engine.python == sys.executable
    assert (engine.engine_id, engine.engine_name, engine.engine_version) == (
        f"python{version}-local",
        "Python",
        version,
    )
    assert engines.catalogue(settings) == [engine]
    assert engine.to_wire() == {
        "engine_id": f"python{version}-local",
        "engine_name": "Python",
        "engine_version": version,
        "v1_compatible": False,
        "run_user": "",
        "image_info": {"cpu_image_url": "", "gpu_image_url": "", "image_version": ""},
    }


def test_extra_engines_from_settings(settings: Settings, tmp_path: Path) -> None:
    not_executable = tmp_path / "python-not-executable"
    not_executable.write_text("")
    not_python = tmp_path / "not-python"
    not_python.write_text("#!/bin/sh\nexit 1\n")
    not_python.chmod(0o755)
    registered = {
        "PyTorch": sys.executable,
        "Missing": str(tmp_path / "no-such-python"),
        "NotExecutable": str(not_executable),
        "NotPython": str(not_python),
        "Relative": "python3",
    }
    settings = dataclasses.replace(settings, extra_engines=json.dumps(registered))
    catalogue = engines.catalogue(settings)
    assert [engine.engine_name for engine in catalogue] == ["Python", "PyTorch"]
    pytorch = catalogue[1]
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert pytorch.python == sys.executable
    assert pytorch.engine_id == f"pytorch-python{version}-local"
    assert pytorch.engine_version == version

    assert engines.find_engine(settings, engine_id=pytorch.engine_id) == pytorch
    assert engines.find_engine(settings, engine_name="pytorch", engine_version=version) == pytorch
    assert engines.find_engine(settings, engine_name="Python", engine_version=version) == catalogue[0]
    assert engines.find_engine(settings, engine_name="PyTorch", engine_version="2.7") is None
    assert engines.find_engine(settings, engine_id="tensorflow") is None
    assert engines.find_engine(settings) is None


def test_bad_engines_setting_keeps_the_default(settings: Settings) -> None:
    for raw in ("not json", "[1, 2]", '{"x": 3}'):
        assert engines.catalogue(dataclasses.replace(settings, extra_engines=raw)) == [engines.default_engine(settings)]


def test_engines_setting_from_the_environment() -> None:
    settings = Settings.from_env({"OPENARTS_ENGINES": json.dumps({"Other": sys.executable})})
    assert [engine.engine_name for engine in engines.catalogue(settings)] == ["Python", "Other"]
    assert Settings.from_env({}).extra_engines is None
