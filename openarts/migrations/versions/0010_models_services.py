"""models, real-time services and their instances

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=16), nullable=False),
        sa.Column("model_type", sa.String(length=32), nullable=False),
        sa.Column("runtime", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=128), nullable=False),
        sa.Column("source_location", sa.Text(), nullable=False),
        sa.Column("model_size", sa.BigInteger(), nullable=False),
        sa.Column("create_at", sa.BigInteger(), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_models_project_name_version", "models", ["project_id", "name", "version"], unique=True)
    op.create_index("ix_models_project_workspace", "models", ["project_id", "workspace_id"], unique=False)
    op.create_index("ix_models_status", "models", ["status"], unique=False)
    op.create_table(
        "services",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.String(length=128), nullable=False),
        sa.Column("infer_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.BigInteger(), nullable=False),
        sa.Column("error_msg", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("schedule", sa.JSON(), nullable=True),
        sa.Column("due_time", sa.BigInteger(), nullable=True),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("cpus", sa.Double(), nullable=False),
        sa.Column("memory_gb", sa.Double(), nullable=False),
        sa.Column("publish_at", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.BigInteger(), nullable=False),
        sa.Column("transition_at", sa.BigInteger(), nullable=False),
        sa.Column("deploy_started_at", sa.BigInteger(), nullable=False),
        sa.Column("stop_requested_at", sa.BigInteger(), nullable=True),
        sa.Column("invocation_times", sa.BigInteger(), nullable=False),
        sa.Column("failed_times", sa.BigInteger(), nullable=False),
        sa.Column("counters", sa.JSON(), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("logs", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_services_project_name", "services", ["project_id", "name"], unique=True)
    op.create_index("ix_services_project_workspace", "services", ["project_id", "workspace_id"], unique=False)
    op.create_index("ix_services_status", "services", ["status"], unique=False)
    op.create_table(
        "service_instances",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("service_id", sa.String(length=36), nullable=False),
        sa.Column("model_id", sa.String(length=36), nullable=False),
        sa.Column("config_index", sa.BigInteger(), nullable=False),
        sa.Column("port", sa.BigInteger(), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.Column("process_start_time", sa.Double(), nullable=True),
        sa.Column("launched_at", sa.BigInteger(), nullable=True),
        sa.Column("ready", sa.Boolean(), nullable=False),
        sa.Column("restarts", sa.BigInteger(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["service_id"], ["services.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_service_instances_service_id", "service_instances", ["service_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_service_instances_service_id", table_name="service_instances")
    op.drop_table("service_instances")
    op.drop_index("ix_services_status", table_name="services")
    op.drop_index("ix_services_project_workspace", table_name="services")
    op.drop_index("ix_services_project_name", table_name="services")
    op.drop_table("services")
    op.drop_index("ix_models_status", table_name="models")
    op.drop_index("ix_models_project_workspace", table_name="models")
    op.drop_index("ix_models_project_name_version", table_name="models")
    op.drop_table("models")
