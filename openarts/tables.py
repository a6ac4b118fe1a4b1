"""Every table of every family, so Alembic sees the whole schema."""

from openarts.autosearch import tables as autosearch_tables
from openarts.core import leadership
from openarts.core.db import Base
from openarts.core.identity import tables as identity_tables
from openarts.models import tables as model_tables
from openarts.notebooks import tables as notebook_tables
from openarts.notebooks.images import tables as notebook_image_tables
from openarts.services import tables as service_tables
from openarts.training import quotas as training_quotas
from openarts.training.algorithms import tables as algorithm_tables
from openarts.training.experiments import tables as experiment_tables
from openarts.training.jobs import tables as job_tables
from openarts.workflows import tables as workflow_tables
from openarts.workflows.triggers import tables as workflow_trigger_tables
from openarts.workspaces import tables as workspace_tables

metadata = Base.metadata

__all__ = [
    "algorithm_tables",
    "autosearch_tables",
    "experiment_tables",
    "identity_tables",
    "job_tables",
    "leadership",
    "metadata",
    "model_tables",
    "notebook_image_tables",
    "notebook_tables",
    "service_tables",
    "training_quotas",
    "workflow_tables",
    "workflow_trigger_tables",
    "workspace_tables",
]
