from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class TrainingJob(Base):
    """One training job: what was asked (the request, echoed back) and where it stands."""

    __tablename__ = "training_jobs"
    __table_args__ = (
        Index("ix_training_jobs_workspace_name", "project_id", "workspace_id", "name", unique=True),
        Index("ix_training_jobs_phase_seq", "phase", "queue_seq"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    workspace_id: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(String(256), default="")
    user_id: Mapped[str] = mapped_column(String(32))
    user_name: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[int]
    annotations: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    experiment: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the reference as the job shows it
    experiment_id: Mapped[str | None] = mapped_column(String(36), index=True)
    algorithm: Mapped[dict[str, Any]] = mapped_column(JSON)  # the algorithm as the job response echoes it
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)  # the spec as the job response echoes it
    # What the controller needs, resolved at create time so a restart never re-resolves it.
    launch: Mapped[dict[str, Any]] = mapped_column(JSON)
    cpus: Mapped[float]
    memory_gb: Mapped[float]
    queue_seq: Mapped[int]  # admission order
    # Status.
    phase: Mapped[str] = mapped_column(String(16))
    secondary_phase: Mapped[str] = mapped_column(String(32))
    start_time: Mapped[int] = mapped_column(default=0)
    end_time: Mapped[int] = mapped_column(default=0)
    exit_code: Mapped[int | None]
    message: Mapped[str] = mapped_column(Text, default="")
    pid: Mapped[int | None]
    process_start_time: Mapped[float | None]
    stop_requested_at: Mapped[int | None]  # when a stop (or auto_stop) asked for termination
    kill_sent: Mapped[bool] = mapped_column(default=False)
    delete_requested: Mapped[bool] = mapped_column(default=False)  # removed once its process is gone


class JobEvent(Base):
    __tablename__ = "training_job_events"

    # SQLite numbers rows itself only for an INTEGER primary key.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), index=True)
    time: Mapped[int]
    level: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)


class JobMetricSample(Base):
    """CPU and memory of the job's process tree, sampled while it runs."""

    __tablename__ = "training_job_metrics"

    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True)
    time: Mapped[int] = mapped_column(primary_key=True)
    cpu_percent: Mapped[float]
    memory_mb: Mapped[float]


class JobTag(Base):
    __tablename__ = "training_job_tags"

    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))
