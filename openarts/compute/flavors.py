"""The flavor catalogue: ModelArts flavor ids mapped onto this machine's CPUs, memory and GPUs.

CPU flavors are always offered, with ModelArts' own ids, so documented examples (``modelarts.vm.cpu.8u``)
work anywhere; one larger than the machine runs alone (see ``capacity.admit``) unless the settings ask
for strict flavors. GPU flavors are offered only where ``nvidia-smi`` reports GPUs.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from typing import Any

from openarts.compute.capacity import Demand, Gpu, detect_gpus, machine_capacity
from openarts.config import Settings

# (id, vCPUs, GB): ModelArts' public CPU flavors, 4 GB per vCPU.
_CPU_FLAVORS = (
    ("modelarts.vm.cpu.2u", 2, 8),
    ("modelarts.vm.cpu.4u", 4, 16),
    ("modelarts.vm.cpu.8u", 8, 32),
)
# A GPU flavor's share of the host per card, as on ModelArts' single-card flavors (bounded by the machine).
_CPUS_PER_GPU = 8
_MEMORY_GB_PER_GPU = 32
_DISK_GB = 50


@dataclass(frozen=True)
class Flavor:
    flavor_id: str
    flavor_name: str
    flavor_type: str  # "CPU" | "GPU"
    cpu_cores: int
    memory_gb: int
    gpu_count: int = 0
    gpu_product: str | None = None
    gpu_memory_gb: int | None = None
    arch: str = "x86"
    disk_gb: int = _DISK_GB

    def to_wire(self) -> dict[str, Any]:
        """The ModelArts flavor object (reference B.5), as ``training-job-flavors`` lists it."""
        info: dict[str, Any] = {"max_num": 1, "cpu": {"arch": self.arch, "core_num": self.cpu_cores}}
        if self.flavor_type == "GPU":
            info["gpu"] = {
                "unit_num": self.gpu_count,
                "product_name": self.gpu_product or "",
                "memory": f"{self.gpu_memory_gb}GB" if self.gpu_memory_gb is not None else "",
            }
        info["memory"] = {"size": self.memory_gb, "unit": "GB"}
        info["disk"] = {"size": self.disk_gb, "unit": "GB"}
        return {
            "flavor_id": self.flavor_id,
            "flavor_name": self.flavor_name,
            "flavor_type": self.flavor_type,
            # One node as local processes. On the Ray executor a job may ask for more (node_count), as many as
            # the cluster has nodes, which this catalogue does not ask it: docs/compat.md says so.
            "max_num": 1,
            "billing": {"code": self.flavor_id, "unit_num": 1},
            "flavor_info": info,
            "attributes": {},
        }

    def demand(self, key: str, nodes: int = 1) -> Demand:
        """What a job of this flavor on ``nodes`` nodes takes from the capacity pool: the flavor on each."""
        return Demand(
            key=key,
            cpus=float(self.cpu_cores * nodes),
            memory_gb=float(self.memory_gb * nodes),
            gpus=self.gpu_count * nodes,
        )


def catalogue(settings: Settings) -> list[Flavor]:
    """Every flavor this server offers: the CPU ones, then GPU ones with 1, 2, 4, ... cards up to the count."""
    arch = _arch()
    flavors = [
        Flavor(
            flavor_id=flavor_id,
            flavor_name=f"CPU: {cores}vCPUs {memory}GB",
            flavor_type="CPU",
            cpu_cores=cores,
            memory_gb=memory,
            arch=arch,
        )
        for flavor_id, cores, memory in _CPU_FLAVORS
    ]
    gpus = detect_gpus()
    if gpus:
        flavors.extend(_gpu_flavors(settings, gpus, arch))
    return flavors


def find_flavor(settings: Settings, flavor_id: str) -> Flavor | None:
    return next((flavor for flavor in catalogue(settings) if flavor.flavor_id == flavor_id), None)


def _gpu_flavors(settings: Settings, gpus: tuple[Gpu, ...], arch: str) -> list[Flavor]:
    capacity = machine_capacity(settings)
    # Each card brings a bounded slice of the host, so GPU jobs leave room for CPU jobs on big machines
    # and still fit on small ones.
    cpus_per_gpu = max(1, min(_CPUS_PER_GPU, int(capacity.cpus // len(gpus))))
    memory_per_gpu = max(1, min(_MEMORY_GB_PER_GPU, int(capacity.memory_gb // len(gpus))))
    product = gpus[0].name.replace(" ", "-")
    gpu_memory_gb = round(gpus[0].memory_mb / 1024)
    counts = [count for count in (1, 2, 4, 8, 16) if count <= len(gpus)]
    if len(gpus) not in counts:
        counts.append(len(gpus))
    return [
        Flavor(
            flavor_id=f"modelarts.vm.gpu.{count}u",
            flavor_name=(
                f"GPU: {count}*{product}({gpu_memory_gb}GB) | CPU: {count * cpus_per_gpu}vCPUs "
                f"{count * memory_per_gpu}GB"
            ),
            flavor_type="GPU",
            cpu_cores=count * cpus_per_gpu,
            memory_gb=count * memory_per_gpu,
            gpu_count=count,
            gpu_product=product,
            gpu_memory_gb=gpu_memory_gb,
            arch=arch,
        )
        for count in counts
    ]


def _arch() -> str:
    """ModelArts spells the CPU architecture ``x86`` or ``arm``."""
    machine = platform.machine().lower()
    return "arm" if machine.startswith(("arm", "aarch")) else "x86"
