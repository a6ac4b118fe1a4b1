"""Leases with a moved clock: the app and the notebook controller in this process over a real database,
real JupyterLab servers, and a clock the test moves (reference C.5).

The controller's passes are run by the test, so what a pass sees is exactly what the clock says.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from openarts.core.services import Services
from openarts.notebooks.controller import NotebookController, make_controller
from openarts.notebooks.tables import Notebook
from tests.conftest import InProcess
from tests.notebooks.notebook_support import SEED_IMAGE_ID, instance_processes, kill_leftovers

pytestmark = pytest.mark.timeout(300)

HOUR_MS = 3_600_000
SMALL = {"cpu": 0.5, "memory": 1024, "arch": "X86_64", "category": "CPU"}


@pytest.fixture
def controller(inprocess: InProcess) -> Iterator[NotebookController]:
    services = Services(settings=inprocess.settings, db=inprocess.db, clock=inprocess.clock)
    made = make_controller(services)
    try:
        yield made
    finally:
        kill_leftovers(inprocess.settings.data_dir)


def _create(inprocess: InProcess, **lease: Any) -> str:
    body: dict[str, Any] = {
        "name": "leased",
        "image_id": SEED_IMAGE_ID,
        "custom_spec": SMALL,
        "volume": {"category": "evs", "ownership": "managed"},
        **lease,
    }
    response = inprocess.signed("POST", f"/v1/{inprocess.admin['project_id']}/notebooks", body=body)
    assert response.status_code == 200, response.text
    notebook_id: str = response.json()["id"]
    return notebook_id


def _status(inprocess: InProcess, notebook_id: str) -> Notebook:
    with inprocess.db.read() as session:
        notebook = session.get_one(Notebook, notebook_id)
        session.expunge(notebook)
        return notebook


def _drive(controller: NotebookController, inprocess: InProcess, notebook_id: str, wanted: str) -> Notebook:
    """Run controller passes (real time passes for the processes; the test clock does not move)."""
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        controller.reconcile()
        notebook = _status(inprocess, notebook_id)
        if notebook.status == wanted:
            return notebook
        time.sleep(0.05)
    raise AssertionError(f"{notebook_id} is {_status(inprocess, notebook_id).status}, not {wanted}")


def test_a_timing_lease_stops_the_instance_and_renewal_moves_the_expiry(
    inprocess: InProcess, controller: NotebookController
) -> None:
    project = inprocess.admin["project_id"]
    notebook_id = _create(inprocess, lease={"duration": HOUR_MS, "type": "timing"})
    _drive(controller, inprocess, notebook_id, "RUNNING")

    inprocess.clock.advance(HOUR_MS / 1000 - 5)
    controller.reconcile()
    assert _status(inprocess, notebook_id).status == "RUNNING"  # five seconds left
    # Renew by the query: expiry = now + 2 h, whatever the body says.
    renewed = inprocess.signed(
        "PATCH", f"/v1/{project}/notebooks/{notebook_id}/lease?duration={2 * HOUR_MS}", body={"duration": HOUR_MS}
    )
    assert renewed.status_code == 200, renewed.text
    lease = renewed.json()
    now_ms = round(inprocess.clock.now() * 1000)
    assert lease["type"] == "TIMING" and lease["create_at"] + lease["duration"] == now_ms + 2 * HOUR_MS

    inprocess.clock.advance(2 * 3600 - 1)
    controller.reconcile()
    assert _status(inprocess, notebook_id).status == "RUNNING"
    inprocess.clock.advance(2)
    controller.reconcile()
    stopping = _status(inprocess, notebook_id)
    assert stopping.status == "STOPPING" and stopping.stop_reason == "the lease expired"
    stopped = _drive(controller, inprocess, notebook_id, "STOPPED")
    assert stopped.pid is None
    assert instance_processes(inprocess.settings.data_dir, notebook_id) == []

    # Start sets a new expiry from now; a body-less renewal of a stopped instance is 6327.
    started = inprocess.signed("POST", f"/v1/{project}/notebooks/{notebook_id}/start?duration={3 * HOUR_MS}")
    assert started.status_code == 200, started.text
    lease = started.json()["lease"]
    now_ms = round(inprocess.clock.now() * 1000)
    assert lease["create_at"] + lease["duration"] == now_ms + 3 * HOUR_MS
    not_running = inprocess.signed("GET", f"/v1/{project}/notebooks/{notebook_id}/lease")
    assert not_running.json()["error_code"] == "ModelArts.6327"
    _drive(controller, inprocess, notebook_id, "RUNNING")
    inprocess.clock.advance(3 * 3600 + 1)
    controller.reconcile()
    _drive(controller, inprocess, notebook_id, "STOPPED")


def test_an_idle_lease_stops_an_instance_nobody_uses(inprocess: InProcess, controller: NotebookController) -> None:
    notebook_id = _create(inprocess, lease={"duration": HOUR_MS, "type": "IDLE"})
    running = _drive(controller, inprocess, notebook_id, "RUNNING")
    assert running.lease_type == "IDLE"
    inprocess.clock.advance(30 * 60)
    controller.reconcile()
    assert _status(inprocess, notebook_id).status == "RUNNING"  # idle for half its hour
    inprocess.clock.advance(31 * 60)
    controller.reconcile()
    stopping = _status(inprocess, notebook_id)
    assert stopping.status == "STOPPING" and "IDLE lease" in stopping.stop_reason
    _drive(controller, inprocess, notebook_id, "STOPPED")


@pytest.mark.parametrize("duration", [HOUR_MS - 1, 72 * HOUR_MS + 1])
def test_durations_out_of_range_are_6349(inprocess: InProcess, duration: int) -> None:
    body = {
        "name": "too-long",
        "image_id": SEED_IMAGE_ID,
        "custom_spec": SMALL,
        "volume": {"category": "evs"},
        "duration": duration,
    }
    response = inprocess.signed("POST", f"/v1/{inprocess.admin['project_id']}/notebooks", body=body)
    assert response.status_code == 400 and response.json()["error_code"] == "ModelArts.6349"
