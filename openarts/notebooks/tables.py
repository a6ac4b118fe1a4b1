"""Notebook instances, their dynamic storage and their tags."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Notebook(Base):
    """One instance: what was asked (echoed back), its lease, and where its Jupyter server stands."""

    __tablename__ = "notebooks"
    __table_args__ = (Index("ix_notebooks_project_workspace", "project_id", "workspace_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(String(512), default="")
    feature: Mapped[str] = mapped_column(String(16))
    flavor: Mapped[str] = mapped_column(String(64))
    cpus: Mapped[float]  # what the flavor takes from the capacity pool while the instance runs
    memory_gb: Mapped[float]
    image_id: Mapped[str] = mapped_column(String(36), index=True)
    volume: Mapped[dict[str, Any]] = mapped_column(JSON)  # the EVS work volume as the response shows it
    data_volumes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # OBS mounts given at create
    endpoints: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # hooks, affinity... echoed back
    token: Mapped[str] = mapped_column(String(64))
    create_at: Mapped[int]
    update_at: Mapped[int]
    # The lease (reference C.5): expiry = lease_create_at + lease_duration for TIMING leases.
    lease_type: Mapped[str] = mapped_column(String(8))
    lease_duration: Mapped[int] = mapped_column(BigInteger)
    lease_create_at: Mapped[int] = mapped_column(BigInteger)
    lease_update_at: Mapped[int] = mapped_column(BigInteger)
    lease_enable: Mapped[bool] = mapped_column(default=True)
    # Status and the Jupyter server behind it.
    status: Mapped[str] = mapped_column(String(16), index=True)
    fail_reason: Mapped[str] = mapped_column(Text, default="")
    port: Mapped[int | None]
    pid: Mapped[int | None]
    process_start_time: Mapped[float | None]
    launched_at: Mapped[int | None] = mapped_column(BigInteger)  # when the current server was started
    last_activity: Mapped[int | None] = mapped_column(BigInteger)  # Jupyter's own, for IDLE leases
    stop_reason: Mapped[str] = mapped_column(Text, default="")  # why the last stop happened
    stop_requested_at: Mapped[int | None] = mapped_column(BigInteger)


class NotebookStorage(Base):
    """An object-store folder that appears as a folder of the instance's work directory."""

    __tablename__ = "notebook_storages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id", ondelete="CASCADE"), index=True)
    category: Mapped[str] = mapped_column(String(16))
    uri: Mapped[str] = mapped_column(Text)
    mount_path: Mapped[str] = mapped_column(Text)
    mount_type: Mapped[str] = mapped_column(String(16))  # STATIC (given at create) or DYNAMIC (attached)
    status: Mapped[str] = mapped_column(String(16))
    failure_reason: Mapped[str] = mapped_column(Text, default="")
    create_at: Mapped[int]


class NotebookTag(Base):
    __tablename__ = "notebook_tags"

    instance_id: Mapped[str] = mapped_column(ForeignKey("notebooks.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
