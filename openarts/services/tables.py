"""Real-time services and the processes (instances) that serve their models."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        Index("ix_services_project_name", "project_id", "name", unique=True),
        Index("ix_services_project_workspace", "project_id", "workspace_id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    workspace_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(128), default="")
    infer_type: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), index=True)
    progress: Mapped[int] = mapped_column(default=0)
    error_msg: Mapped[str] = mapped_column(Text, default="")
    # The config entries as the show response gives them (model name/version resolved at deploy).
    config: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    schedule: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    due_time: Mapped[int | None] = mapped_column(BigInteger)
    extras: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # vpc, pool, additional_properties...
    cpus: Mapped[float]  # what all its instances take from the capacity pool while it is up
    memory_gb: Mapped[float]
    publish_at: Mapped[int]
    update_time: Mapped[int]
    transition_at: Mapped[int]
    deploy_started_at: Mapped[int] = mapped_column(default=0)
    stop_requested_at: Mapped[int | None] = mapped_column(BigInteger)
    invocation_times: Mapped[int] = mapped_column(default=0)
    failed_times: Mapped[int] = mapped_column(default=0)
    counters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # per model: [invocations, failures]
    events: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    logs: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)


class ServiceInstance(Base):
    """One process serving one model of a service: the port is recorded before launch, the pid after."""

    __tablename__ = "service_instances"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # "<service_id>-<config index>-<n>"
    service_id: Mapped[str] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[str] = mapped_column(String(36))
    config_index: Mapped[int]
    # Where it listens: the host is the node's address (127.0.0.1 on this machine, a Ray node's IP on a
    # cluster); the port is chosen before launch here, and reported by the instance on a cluster.
    host: Mapped[str] = mapped_column(String(255), default="127.0.0.1", server_default="127.0.0.1")
    port: Mapped[int | None]
    pid: Mapped[int | None]
    process_start_time: Mapped[float | None]
    launched_at: Mapped[int | None] = mapped_column(BigInteger)
    ready: Mapped[bool] = mapped_column(default=False)
    restarts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
