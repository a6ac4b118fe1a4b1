"""The training experiment table."""

from __future__ import annotations

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Experiment(Base):
    __tablename__ = "training_experiments"
    __table_args__ = (
        # GET /training-experiment-names answers per workspace, so names are unique per workspace.
        UniqueConstraint("project_id", "workspace_id", "name"),
        # No cascade: a workspace that still holds experiments cannot be deleted (resource_holders).
        ForeignKeyConstraint(["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[int]
    update_time: Mapped[int]
    # The serial number handed to the last job filed under the experiment (next_serial_number).
    last_serial_number: Mapped[int] = mapped_column(default=0)
