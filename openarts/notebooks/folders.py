"""Where an instance lives on this machine."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openarts.config import Settings


@dataclass(frozen=True)
class InstanceDir:
    """An instance's folder on this machine."""

    root: Path

    @classmethod
    def of(cls, settings: Settings, notebook_id: str) -> InstanceDir:
        return cls(settings.notebooks_dir / notebook_id)

    @property
    def work(self) -> Path:
        """The EVS volume: ``/home/ma-user/work/`` in responses; survives stop and start."""
        return self.root / "work"

    @property
    def state(self) -> Path:
        """Jupyter's runtime, config and data folders, and HOME: never shared between instances."""
        return self.root / "state"

    @property
    def log(self) -> Path:
        return self.root / "jupyter.log"

    @property
    def exit_file(self) -> Path:
        return self.root / "exit_code"
