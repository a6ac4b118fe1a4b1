"""The model registry: one row per (name, version), with its package checked and copied at publish."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (
        Index("ix_models_project_name_version", "project_id", "name", "version", unique=True),
        Index("ix_models_project_workspace", "project_id", "workspace_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(16))
    model_type: Mapped[str] = mapped_column(String(32))  # "" until read from config.json
    runtime: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), index=True)
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    description: Mapped[str] = mapped_column(String(128), default="")
    source_location: Mapped[str] = mapped_column(Text)  # the obs_url of the folder holding model/
    model_size: Mapped[int] = mapped_column(default=0)
    create_at: Mapped[int]
    # The request as sent (apis, dependencies, metrics, docs...) and, once published, config.json.
    request: Mapped[dict[str, Any]] = mapped_column(JSON)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
