"""Which executor runs the jobs: local processes, or a Ray cluster (``OPENARTS_EXECUTOR``)."""

from __future__ import annotations

from collections.abc import Callable

from openarts.compute.executor import Executor
from openarts.compute.local import LocalExecutor
from openarts.config import Settings


def make_executor(settings: Settings, on_exit: Callable[[], None] | None = None) -> Executor:
    """The executor the settings ask for; ``on_exit`` is called whenever one of its jobs ends.

    Raises ``ValueError`` with the reason when the settings cannot work (see ``validate_ray_settings``).
    """
    if settings.executor == "ray":
        # Imported here: Ray is an optional extra, and a local server must not pay for its import.
        from openarts.compute.ray_executor import RayExecutor, remote_store, validate_ray_settings

        validate_ray_settings(settings)
        assert settings.ray_address is not None  # checked by validate_ray_settings
        # Without a shared data folder, the nodes stage each job's folder from the S3-compatible store.
        return RayExecutor(settings.ray_address, on_exit, store=remote_store(settings))
    return LocalExecutor(on_exit=on_exit)
