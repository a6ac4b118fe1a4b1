from __future__ import annotations

from sqlalchemy import ForeignKey, ForeignKeyConstraint, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Workspace(Base):
    __tablename__ = "workspaces"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    # The default workspace is "0" in every project, so ids are unique per project only.
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(256), default="")
    owner_id: Mapped[str | None] = mapped_column(String(32))  # None: the default workspace
    owner: Mapped[str] = mapped_column(String(64))
    auth_type: Mapped[str] = mapped_column(String(16))
    enterprise_project_id: Mapped[str] = mapped_column(String(64))
    enterprise_project_name: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    status_info: Mapped[str] = mapped_column(String(256), default="")
    create_time: Mapped[int]
    update_time: Mapped[int]


class WorkspaceGrant(Base):
    __tablename__ = "workspace_grants"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"], ondelete="CASCADE"
        ),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_name: Mapped[str] = mapped_column(String(64))
    user_type: Mapped[str] = mapped_column(String(16))


class WorkspaceQuota(Base):
    """A quota the user changed; resources never changed take the catalogue's default."""

    __tablename__ = "workspace_quotas"
    __table_args__ = (
        ForeignKeyConstraint(
            ["project_id", "workspace_id"], ["workspaces.project_id", "workspaces.id"], ondelete="CASCADE"
        ),
    )

    project_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    quota: Mapped[int]
    update_time: Mapped[int]
