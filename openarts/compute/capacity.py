"""The machine's capacity as one pool, and strict-FIFO admission of jobs into it.

Nothing overcommits the machine (DESIGN principle 4): a job starts only when what the running jobs leave
free covers its flavor. The one exception is a flavor larger than the whole machine (the seed's workflow
asks for ``modelarts.vm.cpu.8u`` on laptops): it runs, but alone, so the documented examples work.

With the Ray executor the "machine" is the cluster: the resources its live nodes offer, asked of its
dashboard and kept for ``CLUSTER_CACHE_S`` (nodes come and go, but admission must not cost a request each).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil

from openarts.config import Settings

log = logging.getLogger("openarts.compute")

# Demands are sums of floats (0.5 + 0.25 + ...): compare with a little slack so 4.0 fits in 3.9999999.
_EPSILON = 1e-9
_GIB = 1024**3
CLUSTER_CACHE_S = 10.0  # how long the cluster's resources are taken as they were last asked
CLUSTER_TIMEOUT_S = 5  # a request path waits at most this long for the cluster's answer


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_mb: int


@dataclass(frozen=True)
class Capacity:
    cpus: float
    memory_gb: float
    gpus: int = 0


@dataclass(frozen=True)
class Demand:
    key: str  # a job id
    cpus: float
    memory_gb: float
    gpus: int = 0


def machine_capacity(settings: Settings) -> Capacity:
    """What jobs may share: the CPUs and memory this process may use, unless the settings say otherwise.

    Container limits (CPU affinity, cgroup quotas) count, so a server in a 2-CPU container does not admit
    jobs as if it had the host's 64. With the Ray executor, the cluster's resources instead (``OPENARTS_
    COMPUTE_CPUS``/``MEMORY_GB`` still override each figure).
    """
    if settings.executor == "ray" and settings.ray_address:
        cluster = cluster_capacity(settings.ray_address)
        cpus = settings.compute_cpus if settings.compute_cpus is not None else cluster.cpus
        memory_gb = settings.compute_memory_gb if settings.compute_memory_gb is not None else cluster.memory_gb
        return Capacity(cpus=float(cpus), memory_gb=float(memory_gb), gpus=cluster.gpus)
    cpus = settings.compute_cpus if settings.compute_cpus is not None else _usable_cpus()
    memory_gb = settings.compute_memory_gb if settings.compute_memory_gb is not None else _usable_memory() / _GIB
    return Capacity(cpus=float(cpus), memory_gb=float(memory_gb), gpus=len(detect_gpus()))


# --- a Ray cluster -----------------------------------------------------------------------------------------

_cluster_lock = threading.Lock()
_cluster_cache: dict[str, tuple[float, Capacity]] = {}  # dashboard address: (when asked, what it said)


def cluster_capacity(address: str) -> Capacity:
    """The resources of the Ray cluster's live nodes (CPU, the schedulable ``memory`` Ray admits jobs
    against, GPU), asked of its dashboard at most every ``CLUSTER_CACHE_S``. When the cluster cannot be
    asked: the last answer, or, before any, this machine's figures (nothing can run meanwhile anyway),
    kept as long as an answer: a cluster that is away must not cost every caller the timeout."""
    with _cluster_lock:  # callers meanwhile wait for the same answer rather than ask again
        cached = _cluster_cache.get(address)
        if cached is not None and time.monotonic() - cached[0] < CLUSTER_CACHE_S:
            return cached[1]
        try:
            capacity = _ask_ray(address)
        except Exception as exc:  # unreachable, refused, or an answer of another shape
            log.warning("the Ray cluster at %s cannot be asked for its resources: %s", address, exc)
            capacity = cached[1] if cached is not None else _this_machine()
        _cluster_cache[address] = (time.monotonic(), capacity)
        return capacity


def _this_machine() -> Capacity:
    return Capacity(cpus=_usable_cpus(), memory_gb=_usable_memory() / _GIB, gpus=len(detect_gpus()))


def _ask_ray(address: str) -> Capacity:
    """The cluster's resources through Ray's state API over the dashboard's HTTP address: the server needs
    no Ray driver of its own (see ray_executor.py), and Ray's token authentication applies as to its jobs."""
    from ray.util.state import list_nodes  # Ray is an optional extra, imported only where it is the executor

    nodes = list_nodes(address=address, filters=[("state", "=", "ALIVE")], timeout=CLUSTER_TIMEOUT_S)
    totals = [node.resources_total or {} for node in nodes]
    return Capacity(
        cpus=float(sum(total.get("CPU", 0) for total in totals)),
        memory_gb=float(sum(total.get("memory", 0) for total in totals)) / _GIB,
        gpus=int(sum(total.get("GPU", 0) for total in totals)),
    )


def fits_machine(demand: Demand, capacity: Capacity) -> bool:
    """Whether the demand fits in the whole machine (with nothing else running)."""
    return _fits(demand, capacity.cpus, capacity.memory_gb, capacity.gpus)


def admit(queue: Sequence[Demand], running: Sequence[Demand], capacity: Capacity) -> list[str]:
    """The keys of the queued demands to start now, in queue order.

    Strict FIFO: the head must start before anything behind it, even if a smaller job behind it would
    fit (no overtaking, so a big job is never starved by a stream of small ones). A demand larger than the
    whole machine starts only on an idle machine and then alone; while it runs nothing else fits, because
    it leaves negative room.
    """
    free_cpus = capacity.cpus - sum(d.cpus for d in running)
    free_memory = capacity.memory_gb - sum(d.memory_gb for d in running)
    free_gpus = capacity.gpus - sum(d.gpus for d in running)
    busy = bool(running)
    admitted: list[str] = []
    for demand in queue:
        if not fits_machine(demand, capacity):
            if not busy:
                admitted.append(demand.key)
            break  # either it waits for an idle machine, or it has just taken the machine alone
        if not _fits(demand, free_cpus, free_memory, free_gpus):
            break
        admitted.append(demand.key)
        free_cpus -= demand.cpus
        free_memory -= demand.memory_gb
        free_gpus -= demand.gpus
        busy = True
    return admitted


def _fits(demand: Demand, cpus: float, memory_gb: float, gpus: int) -> bool:
    return demand.cpus <= cpus + _EPSILON and demand.memory_gb <= memory_gb + _EPSILON and demand.gpus <= gpus


# --- GPUs -------------------------------------------------------------------------------------------------


@functools.cache
def detect_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs of this machine, asked once of ``nvidia-smi`` (no binary, or any failure: none).

    Cached for the life of the process: GPUs do not come and go under a running server, and listing
    flavors must not fork a process per request. Tests call ``detect_gpus.cache_clear()``.
    """
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return ()
    argv = [binary, "--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed, offering no GPU flavors: %s", exc)
        return ()
    if done.returncode != 0:
        log.warning("nvidia-smi exited with %d, offering no GPU flavors", done.returncode)
        return ()
    gpus: list[Gpu] = []
    for line in done.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) != 3:
            continue
        try:
            gpus.append(Gpu(index=int(fields[0]), name=fields[1], memory_mb=int(float(fields[2]))))
        except ValueError:
            continue
    return tuple(gpus)


# --- CPUs and memory --------------------------------------------------------------------------------------


def _usable_cpus() -> float:
    count = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else psutil.cpu_count() or 1)
    quota = _cgroup_cpu_quota()
    return min(count, quota) if quota is not None else count


def _usable_memory() -> float:
    total = float(psutil.virtual_memory().total)
    limit = _cgroup_memory_limit()
    return min(total, limit) if limit is not None else total


def _cgroup_v2_dir() -> Path | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            folder = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
            return folder if folder.is_dir() else Path("/sys/fs/cgroup")
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_cpu_quota() -> float | None:
    """CPUs allowed by a cgroup quota (v2 ``cpu.max``, or v1 CFS quota), None when unlimited or unknown."""
    v2 = _cgroup_v2_dir()
    raw = _read(v2 / "cpu.max") if v2 is not None else None
    if raw is not None:
        quota, _, period = raw.partition(" ")
    else:
        quota = _read(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) or "max"
        period = _read(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")) or ""
    try:
        cpus = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):
        return None  # "max", v1's -1, or nothing readable
    return max(cpus, 0.01) if cpus > 0 else None


def _cgroup_memory_limit() -> float | None:
    """Bytes allowed by a cgroup memory limit (v2 ``memory.max`` or v1), None when unlimited."""
    v2 = _cgroup_v2_dir()
    raw = _read(v2 / "memory.max") if v2 is not None else None
    if raw is None:
        raw = _read(Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
    if raw is None or not raw.isdigit():
        return None  # "max", or no cgroup: v1 "unlimited" is a huge number that min() ignores
    return float(raw)
