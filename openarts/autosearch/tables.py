from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base

PENDING, RUNNING, TERMINATED, ERROR = "PENDING", "RUNNING", "TERMINATED", "ERROR"


class Trial(Base):
    """One trial of a search: a configuration the algorithm proposed, run as its own process."""

    __tablename__ = "autosearch_trials"
    __table_args__ = (Index("ix_autosearch_trials_job_index", "job_id", "trial_index", unique=True),)

    job_id: Mapped[str] = mapped_column(ForeignKey("training_jobs.id", ondelete="CASCADE"), primary_key=True)
    trial_id: Mapped[str] = mapped_column(String(8), primary_key=True)
    trial_index: Mapped[int]  # order over the whole search
    algorithm: Mapped[str] = mapped_column(String(32))
    algorithm_index: Mapped[int]  # order among this algorithm's own trials
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    pid: Mapped[int | None]
    process_start_time: Mapped[float | None]
    start_time: Mapped[int] = mapped_column(default=0)
    end_time: Mapped[int] = mapped_column(default=0)
    exit_code: Mapped[int | None]
    rewards: Mapped[dict[str, float]] = mapped_column(JSON, default=dict)  # the last value of each metric
    reports: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)  # successive values, as reported
    early_stopped: Mapped[bool] = mapped_column(default=False)
    message: Mapped[str] = mapped_column(Text, default="")
