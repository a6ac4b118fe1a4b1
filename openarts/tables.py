"""Every table of every family, so Alembic sees the whole schema."""

from openarts.core.db import Base
from openarts.core.identity import tables as identity_tables
from openarts.workspaces import tables as workspace_tables

metadata = Base.metadata

__all__ = ["identity_tables", "metadata", "workspace_tables"]
