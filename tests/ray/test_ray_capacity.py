"""The capacity pool with the Ray executor: the cluster's live nodes, asked of its dashboard and kept briefly,
unless the settings give the figures. Cheap tests with the question faked first, then the real cluster."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

from openarts.compute import capacity
from openarts.compute.capacity import Capacity, machine_capacity
from openarts.config import Settings
from tests.ray.conftest import RayCluster

CLUSTER = Capacity(cpus=48.0, memory_gb=300.0, gpus=4)


def settings(tmp_path: Path, address: str = "http://head:8265", **extra: str) -> Settings:
    env = {"OPENARTS_DATA_DIR": str(tmp_path), "OPENARTS_EXECUTOR": "ray", "OPENARTS_RAY_ADDRESS": address}
    return Settings.from_env({**env, **extra})


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The addresses the cluster was asked at (an empty cache first); it answers CLUSTER."""
    questions: list[str] = []

    def ask(address: str) -> Capacity:
        questions.append(address)
        return CLUSTER

    monkeypatch.setattr(capacity, "_cluster_cache", {})
    monkeypatch.setattr(capacity, "_ask_ray", ask)
    yield questions


def test_the_pool_is_the_cluster_asked_once_in_a_while(
    asked: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert machine_capacity(settings(tmp_path)) == CLUSTER
    assert machine_capacity(settings(tmp_path)) == CLUSTER
    assert asked == ["http://head:8265"]  # the second admission did not ask again
    monkeypatch.setattr(capacity, "CLUSTER_CACHE_S", 0.0)
    machine_capacity(settings(tmp_path))
    assert len(asked) == 2  # nodes come and go: after a while it is asked again


def test_the_settings_override_each_figure(asked: list[str], tmp_path: Path) -> None:
    assert machine_capacity(settings(tmp_path, OPENARTS_COMPUTE_CPUS="6")) == Capacity(6.0, 300.0, 4)
    both = settings(tmp_path, OPENARTS_COMPUTE_CPUS="6", OPENARTS_COMPUTE_MEMORY_GB="20")
    assert machine_capacity(both) == Capacity(6.0, 20.0, 4)  # the GPUs are still the cluster's


def test_the_local_executor_counts_this_machine(asked: list[str], tmp_path: Path) -> None:
    local = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path), "OPENARTS_COMPUTE_CPUS": "3"})
    assert machine_capacity(local).cpus == 3.0 and asked == []


def test_a_cluster_that_cannot_be_asked_keeps_its_last_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    answers: list[Capacity | Exception] = [CLUSTER, ConnectionError("refused"), ConnectionError("refused")]

    def ask(address: str) -> Capacity:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(capacity, "_cluster_cache", {})
    monkeypatch.setattr(capacity, "_ask_ray", ask)
    monkeypatch.setattr(capacity, "CLUSTER_CACHE_S", 0.0)
    assert machine_capacity(settings(tmp_path)) == CLUSTER
    assert machine_capacity(settings(tmp_path)) == CLUSTER  # away now: the last answer
    assert "cannot be asked for its resources: refused" in caplog.text
    # Never answered: this machine's figures, rather than nothing (no job runs meanwhile anyway).
    monkeypatch.setattr(capacity, "_cluster_cache", {})
    here = machine_capacity(settings(tmp_path))
    assert here.cpus >= 1 and here.memory_gb > 0


def test_the_real_cluster_offers_its_nodes(
    ray_cluster: RayCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(capacity, "_cluster_cache", {})
    pool = machine_capacity(settings(tmp_path, ray_cluster.address))
    assert pool.cpus == 4.0 and pool.gpus == 0  # two nodes of two CPUs each (conftest.py), token auth on
    assert pool.memory_gb > 0
    limited = machine_capacity(settings(tmp_path, ray_cluster.address, OPENARTS_COMPUTE_MEMORY_GB="1"))
    assert limited == Capacity(4.0, 1.0, 0)
