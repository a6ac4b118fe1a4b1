"""Schedules, subscriptions and service packages of workflows, and what they did."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class WorkflowSchedule(Base):
    __tablename__ = "workflow_schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    type: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"cron": "0 0 0 * * Thu", "method": "fixed"}
    policies: Mapped[dict[str, Any]] = mapped_column(JSON)  # {"on_failure": "retry", "on_running": "cancel"}
    enable: Mapped[bool]
    created_at: Mapped[int]
    # The next slot to fire (epoch ms), moved in the transaction that fires a slot: at most once per slot.
    next_fire_at: Mapped[int | None] = mapped_column(BigInteger)


class ScheduleRun(Base):
    """One execution a schedule started for one slot (attempt 1), or a retry of a failed one (2, 3...)."""

    __tablename__ = "workflow_schedule_runs"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("workflow_schedules.id", ondelete="CASCADE"), index=True)
    slot_at: Mapped[int] = mapped_column(BigInteger)
    attempt: Mapped[int]
    # pending (a retry waiting to start), started, skipped (on_running: cancel), refused (start failed)
    status: Mapped[str] = mapped_column(String(16), index=True)
    execution_id: Mapped[str | None] = mapped_column(String(36), index=True)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int]


class WorkflowSubscription(Base):
    __tablename__ = "workflow_subscriptions"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    topic_urns: Mapped[list[str]] = mapped_column(JSON)
    entity: Mapped[str] = mapped_column(String(128), default="")
    events: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[int]


class WebhookDelivery(Base):
    """One transition POSTed to one webhook: recorded when the transition commits, sent (and retried) by
    the trigger controller, every attempt's outcome kept."""

    __tablename__ = "workflow_webhook_deliveries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    topic_urn: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16), index=True)  # pending, delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int]


class ServicePackage(Base):
    __tablename__ = "workflow_service_packages"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    workflow_id: Mapped[str] = mapped_column(ForeignKey("workflows.id", ondelete="CASCADE"), index=True)
    pool_id: Mapped[str] = mapped_column(String(128))
    service_id: Mapped[str | None] = mapped_column(String(64), index=True)
    order: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    consume_limit: Mapped[int]
    current_consume: Mapped[int] = mapped_column(default=0)
    current_date: Mapped[str] = mapped_column(String(16), default="")  # the period current_consume counts
    limit_enable: Mapped[bool]
    created_at: Mapped[int]
