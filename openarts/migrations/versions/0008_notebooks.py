"""notebook instances, their storages and tags

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notebooks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("user_name", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.String(length=512), nullable=False),
        sa.Column("feature", sa.String(length=16), nullable=False),
        sa.Column("flavor", sa.String(length=64), nullable=False),
        sa.Column("cpus", sa.Double(), nullable=False),
        sa.Column("memory_gb", sa.Double(), nullable=False),
        sa.Column("image_id", sa.String(length=36), nullable=False),
        sa.Column("volume", sa.JSON(), nullable=False),
        sa.Column("data_volumes", sa.JSON(), nullable=False),
        sa.Column("endpoints", sa.JSON(), nullable=False),
        sa.Column("extras", sa.JSON(), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("create_at", sa.BigInteger(), nullable=False),
        sa.Column("update_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_type", sa.String(length=8), nullable=False),
        sa.Column("lease_duration", sa.BigInteger(), nullable=False),
        sa.Column("lease_create_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_update_at", sa.BigInteger(), nullable=False),
        sa.Column("lease_enable", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("fail_reason", sa.Text(), nullable=False),
        sa.Column("port", sa.BigInteger(), nullable=True),
        sa.Column("pid", sa.BigInteger(), nullable=True),
        sa.Column("process_start_time", sa.Double(), nullable=True),
        sa.Column("launched_at", sa.BigInteger(), nullable=True),
        sa.Column("last_activity", sa.BigInteger(), nullable=True),
        sa.Column("stop_reason", sa.Text(), nullable=False),
        sa.Column("stop_requested_at", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notebooks_project_id", "notebooks", ["project_id"])
    op.create_index("ix_notebooks_image_id", "notebooks", ["image_id"])
    op.create_index("ix_notebooks_status", "notebooks", ["status"])
    op.create_index("ix_notebooks_project_workspace", "notebooks", ["project_id", "workspace_id"])
    op.create_table(
        "notebook_storages",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("category", sa.String(length=16), nullable=False),
        sa.Column("uri", sa.Text(), nullable=False),
        sa.Column("mount_path", sa.Text(), nullable=False),
        sa.Column("mount_type", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=False),
        sa.Column("create_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_notebook_storages_instance_id", "notebook_storages", ["instance_id"])
    op.create_table(
        "notebook_tags",
        sa.Column("instance_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=128), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(["instance_id"], ["notebooks.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("instance_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("notebook_tags")
    op.drop_index("ix_notebook_storages_instance_id", table_name="notebook_storages")
    op.drop_table("notebook_storages")
    op.drop_index("ix_notebooks_project_workspace", table_name="notebooks")
    op.drop_index("ix_notebooks_status", table_name="notebooks")
    op.drop_index("ix_notebooks_image_id", table_name="notebooks")
    op.drop_index("ix_notebooks_project_id", table_name="notebooks")
    op.drop_table("notebooks")
