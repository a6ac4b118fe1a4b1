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
from openarts.models.api import router as models_router
from openarts.models.controller import make_controller as model_controller
from openarts.notebooks.api import authoring_router
from openarts.notebooks.api import router as notebooks_router
from openarts.notebooks.controller import make_controller as notebook_controller
from openarts.notebooks.images.api import router as images_router
from openarts.services.api import router as services_router
from openarts.services.controller import make_controller as service_controller
from openarts.services.controller import make_route_follower
from openarts.services.gateway import router as inference_router
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

# Matched in this order, so the hot paths come first: inference calls and notebook traffic are many
# small requests, and each router passed over costs time on every one of them.
ROUTERS: list[APIRouter] = [
    inference_router,  # POST {access_address}: calls to running services' model processes
    authoring_router,  # each instance's JupyterLab, authenticated by the instance's token
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
    models_router,
    services_router,
]

# Routes that stream bodies to a server with limits of its own (JupyterLab takes large uploads).
UNCAPPED_BODY_PREFIXES = ("/authoring/",)

# Started with the server, stopped with it (see app.py).
# Each runs in exactly one server at a time, under a lease of that name (see core/leadership.py).
CONTROLLERS: list[tuple[str, ControllerFactory]] = [
    ("training", training_controller),
    ("notebooks", notebook_controller),
    ("workflows", workflow_controller),
    ("workflow-triggers", workflow_trigger_controller),
    ("models", model_controller),
    ("services", service_controller),
]

# Run in every server, lease or not: what each server needs to answer requests itself.
EVERY_SERVER: list[ControllerFactory] = [make_route_follower]
