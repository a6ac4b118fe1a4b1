"""Admission into the capacity pool: strict FIFO, no overcommit, oversized jobs alone on an idle machine."""

from __future__ import annotations

from pathlib import Path

import psutil

from openarts.compute.capacity import Capacity, Demand, admit, fits_machine, machine_capacity
from openarts.config import Settings

MACHINE = Capacity(cpus=8, memory_gb=32)


def job(key: str, cpus: float, memory_gb: float = 1) -> Demand:
    return Demand(key=key, cpus=cpus, memory_gb=memory_gb)


def test_admits_in_order_while_there_is_room() -> None:
    queue = [job("a", 2), job("b", 4), job("c", 2), job("d", 1)]
    assert admit(queue, [], MACHINE) == ["a", "b", "c"]


def test_counts_what_the_running_jobs_hold() -> None:
    assert admit([job("b", 4), job("c", 4)], [job("a", 4)], MACHINE) == ["b"]
    assert admit([job("b", 1)], [job("a", 2, memory_gb=32)], MACHINE) == []  # memory is full


def test_no_overtaking() -> None:
    # The head does not fit: nothing behind it starts, even what would fit.
    queue = [job("big", 6), job("small", 1)]
    assert admit(queue, [job("running", 4)], MACHINE) == []


def test_freed_capacity_admits_the_next() -> None:
    queue = [job("big", 6), job("small", 1)]
    assert admit(queue, [job("running", 4)], MACHINE) == []
    assert admit(queue, [], MACHINE) == ["big", "small"]


def test_oversized_runs_alone_on_an_idle_machine_only() -> None:
    huge = job("huge", 16, memory_gb=64)
    assert not fits_machine(huge, MACHINE)
    assert admit([huge, job("next", 1)], [job("running", 1)], MACHINE) == []
    assert admit([huge, job("next", 1)], [], MACHINE) == ["huge"]
    # Admitted in the same call counts as running: the oversized one waits behind it.
    assert admit([job("first", 1), huge], [], MACHINE) == ["first"]
    # While it runs it holds more than the machine: nothing else starts.
    assert admit([job("next", 0.5, memory_gb=0.1)], [huge], MACHINE) == []


def test_float_sums_do_not_refuse_an_exact_fit() -> None:
    queue = [job(str(i), 0.1, memory_gb=0.1) for i in range(10)]
    assert len(admit(queue, [], Capacity(cpus=1.0, memory_gb=1.0))) == 10


def test_gpus_are_part_of_the_pool() -> None:
    machine = Capacity(cpus=16, memory_gb=64, gpus=1)
    first = Demand("first", 4, 8, gpus=1)
    assert admit([first, Demand("second", 4, 8, gpus=1)], [], machine) == ["first"]
    assert admit([Demand("cpu", 4, 8)], [first], machine) == ["cpu"]


def test_machine_capacity_reads_the_machine(tmp_path: Path) -> None:
    capacity = machine_capacity(Settings(data_dir=tmp_path, database_url="sqlite://"))
    assert 0 < capacity.cpus <= (psutil.cpu_count() or 1)
    assert 0 < capacity.memory_gb <= psutil.virtual_memory().total / 1024**3 + 1e-6


def test_machine_capacity_honours_the_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="sqlite://", compute_cpus=3.5, compute_memory_gb=6)
    capacity = machine_capacity(settings)
    assert (capacity.cpus, capacity.memory_gb) == (3.5, 6.0)
    from_env = Settings.from_env({"OPENARTS_COMPUTE_CPUS": "2", "OPENARTS_COMPUTE_MEMORY_GB": "4.5"})
    assert machine_capacity(from_env) == Capacity(cpus=2.0, memory_gb=4.5, gpus=capacity.gpus)
