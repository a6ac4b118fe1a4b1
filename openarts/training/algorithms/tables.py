"""The algorithm table.

The parts of an algorithm that only travel as a whole (parameters, data channels, engine, the auto
search policy, resource constraints) are JSON columns: nothing queries inside them, and each is
validated by the wire schema before it is stored.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Algorithm(Base):
    __tablename__ = "training_algorithms"
    __table_args__ = (
        # Names are unique in a workspace, as job names are.
        UniqueConstraint("project_id", "workspace_id", "name"),
        # No cascade: a workspace that still holds algorithms cannot be deleted (resource_holders).
        ForeignKeyConstraint(["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    tags: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    domain_id: Mapped[str] = mapped_column(String(32))
    create_time: Mapped[int]
    update_time: Mapped[int]
    # job_config
    code_dir: Mapped[str | None] = mapped_column(String(1024))
    boot_file: Mapped[str | None] = mapped_column(String(1024))
    command: Mapped[str | None] = mapped_column(Text)
    engine: Mapped[dict[str, Any]] = mapped_column(JSON)
    parameters: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    parameters_customization: Mapped[bool] = mapped_column(default=False)
    inputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    environments: Mapped[dict[str, str]] = mapped_column(JSON)
    # advanced_config.auto_search (a job's algorithm.policies.auto_search); None when there is none.
    auto_search: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    resource_requirements: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
