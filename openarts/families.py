"""The families of OpenArts in one place.

Importing a family's API module also registers what it hooks into the core (the default workspace of
each new project, quota resources, usage counters). Every entry point (the server and every CLI command
that touches data) goes through :func:`openarts.bootstrap.prepare`, which imports this module, so the
hooks are always in place before any data changes.
"""

from __future__ import annotations

from fastapi import APIRouter

from openarts.autosearch.api import router as autosearch_router
from openarts.core.controllers import ControllerFactory
from openarts.core.iam import router as iam_router
from openarts.notebooks.api import authoring_router
from openarts.notebooks.api import router as notebooks_router
from openarts.notebooks.controller import make_controller as notebook_controller
from openarts.notebooks.images.api import router as images_router
from openarts.training.algorithms.api import router as algorithms_router
from openarts.training.experiments.api import router as experiments_router
from openarts.training.jobs.api import router as jobs_router
from openarts.training.jobs.controller import make_controller as training_controller
from openarts.training.jobs.tags_api import router as job_tags_router
from openarts.training.quotas import router as training_quotas_router
from openarts.workflows.api import router as workflows_router
from openarts.workflows.controller import make_controller as workflow_controller
from openarts.workflows.triggers.api import router as workflow_triggers_router
from openarts.workflows.triggers.controller import make_controller as workflow_trigger_controller
from openarts.workspaces.api import router as workspaces_router

ROUTERS: list[APIRouter] = [
    iam_router,
    workspaces_router,
    algorithms_router,
    experiments_router,
    jobs_router,
    job_tags_router,
    training_quotas_router,
    autosearch_router,
    images_router,
    notebooks_router,
    workflows_router,
    workflow_triggers_router,
    authoring_router,  # each instance's JupyterLab, authenticated by the instance's token
]

# Routes that stream bodies to a server with limits of its own (JupyterLab takes large uploads).
UNCAPPED_BODY_PREFIXES = ("/authoring/",)

# Started with the server, stopped with it (see app.py).
CONTROLLERS: list[ControllerFactory] = [
    training_controller,
    notebook_controller,
    workflow_controller,
    workflow_trigger_controller,
]
