"""Which executor the session server runs its jobs on: local processes (the default) or, with
``OPENARTS_TEST_EXECUTOR=ray``, a Ray cluster the session starts on this machine (see tests/conftest.py)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tests.ray.conftest import RayCluster

EXECUTORS = ("local", "ray")


def executor_under_test() -> str:
    name = os.environ.get("OPENARTS_TEST_EXECUTOR", "").strip().lower() or "local"
    if name not in EXECUTORS:
        raise ValueError(f"OPENARTS_TEST_EXECUTOR must be one of {', '.join(EXECUTORS)}, not {name!r}")
    return name


def on_ray() -> bool:
    """True when the session server's jobs run on Ray: tests of what only the local executor offers (a
    process tree to sample) leave those parts out."""
    return executor_under_test() == "ray"


@contextlib.contextmanager
def started_ray_cluster(nodes: int, cpus: int = 2) -> Iterator[RayCluster]:
    """``running_cluster``, started a second time if a node exits at start: on a busy machine Ray's
    dashboard agent may take longer than the 15 s its raylet waits for it, and the raylet then exits
    (a fixed wait in Ray: ray-project/ray#65983)."""
    from tests.ray.conftest import running_cluster

    with contextlib.ExitStack() as stack:
        try:
            cluster = stack.enter_context(running_cluster(nodes=nodes, cpus=cpus))
        except RuntimeError as exc:  # running_cluster has stopped what it started
            if "exited at start" not in str(exc):
                raise
            cluster = stack.enter_context(running_cluster(nodes=nodes, cpus=cpus))
        yield cluster


def ray_server_env(address: str, *, shared_fs: bool = True) -> dict[str, str]:
    """A live server's settings for jobs on the Ray cluster at ``address``: the executor, whether the nodes
    share the data folder (one machine: they do, unless a test wants them to stage through S3), and the
    cluster's token as an operator would hand it to the server (``running_cluster`` set it here)."""
    return {
        "OPENARTS_EXECUTOR": "ray",
        "OPENARTS_RAY_ADDRESS": address,
        "OPENARTS_RAY_SHARED_FS": "1" if shared_fs else "",
        **{key: os.environ[key] for key in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN") if key in os.environ},
    }
