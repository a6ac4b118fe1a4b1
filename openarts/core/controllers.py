"""What a family's controller looks like to the app that runs it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from openarts.core.services import Services


class Controller(Protocol):
    def start(self) -> None:
        """Re-adopt or settle the work a previous life left, then start converging."""

    def stop(self) -> None:
        """Stop converging; the work itself (processes, servers) goes on."""

    def wake(self) -> None:
        """Look at the rows now: something may have changed (another server took a request)."""


ControllerFactory = Callable[[Services], Controller]
