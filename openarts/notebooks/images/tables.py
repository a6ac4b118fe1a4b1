"""Registered images and their groups.

Built-in images are not rows: they are the fixed catalogue of ``catalogue.py``. A group is the set of
versions (tags) of one image name in one workspace; it goes when its last image goes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, ForeignKeyConstraint, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class ImageGroup(Base):
    __tablename__ = "notebook_image_groups"
    __table_args__ = (
        UniqueConstraint("project_id", "workspace_id", "namespace", "name"),
        # No cascade: a workspace that still holds images cannot be deleted (resource_holders).
        ForeignKeyConstraint(["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"]),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    namespace: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(512))
    description: Mapped[str] = mapped_column(String(512), default="")  # its first image's
    read_me: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[dict[str, Any]]] = mapped_column(JSON)  # [{key, value}]
    create_at: Mapped[int]
    update_at: Mapped[int]


class Image(Base):
    __tablename__ = "notebook_images"
    __table_args__ = (
        UniqueConstraint("group_id", "tag"),  # also the index of a group's versions
        ForeignKeyConstraint(["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"]),
        Index("ix_notebook_images_scope", "project_id", "workspace_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[str] = mapped_column(ForeignKey("notebook_image_groups.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(512))
    namespace: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(128))
    swr_path: Mapped[str] = mapped_column(String(2048))
    # The environment: where it was named (an interpreter or a prefix) and the interpreter found there.
    location: Mapped[str] = mapped_column(String(2048))
    python: Mapped[str] = mapped_column(String(2048))
    python_version: Mapped[str] = mapped_column(String(32), default="")
    jupyterlab_version: Mapped[str] = mapped_column(String(32), default="")
    jupyter_server_version: Mapped[str] = mapped_column(String(32), default="")
    arch: Mapped[str] = mapped_column(String(16))
    origin: Mapped[str] = mapped_column(String(16))
    service_type: Mapped[str] = mapped_column(String(16))
    visibility: Mapped[str] = mapped_column(String(16))
    flavor_type: Mapped[str | None] = mapped_column(String(32))
    dev_services: Mapped[list[str]] = mapped_column(JSON)
    resource_categories: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(512), default="")
    status: Mapped[str] = mapped_column(String(16))
    status_message: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    create_at: Mapped[int]
    update_at: Mapped[int]
