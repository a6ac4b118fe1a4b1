"""Each controller runs in exactly one server: leases in the database, taken over when the holder dies.

The unit tests drive two :class:`Leadership` objects over one real database with recording controllers;
the end-to-end test runs two real servers on one PostgreSQL database, kills the one running the
controllers in the middle of a workflow, and sees the other finish it.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkflowExecutionRequest,
    CreateWorkflowRequest,
    ShowWorkflowExecutionRequest,
)
from sqlalchemy import update

from openarts.core.leadership import ControllerLease, Holder, Leadership
from openarts.core.services import Services
from tests.conftest import InProcess
from tests.support.databases import fresh_database
from tests.support.server import LiveServer


class Recording:
    """A controller that only says what was asked of it."""

    def __init__(self, log: list[str], name: str) -> None:
        self.log, self.name = log, name

    def start(self) -> None:
        self.log.append(f"start {self.name}")

    def stop(self) -> None:
        self.log.append(f"stop {self.name}")

    def wake(self) -> None:
        self.log.append(f"wake {self.name}")


def _leadership(inprocess: InProcess, log: list[str], tag: str) -> Leadership:
    services = Services(settings=inprocess.settings, db=inprocess.db, clock=inprocess.clock)
    factories = [(name, lambda _s, name=name: Recording(log, f"{name}@{tag}")) for name in ("one", "two")]
    return Leadership(services, factories)


def test_one_server_holds_each_lease_and_another_takes_over_when_it_lets_go(inprocess: InProcess) -> None:
    log: list[str] = []
    first, second = _leadership(inprocess, log, "a"), _leadership(inprocess, log, "b")
    first.tick()
    second.tick()
    assert log == ["start one@a", "start two@a"]
    first.tick()
    if inprocess.db.is_sqlite:  # one server's file: its own requests wake its controllers, nobody else's come
        assert log == ["start one@a", "start two@a"]
    else:  # the holder pokes its controllers every tick, for the work created through other servers
        assert log[-2:] == ["wake one@a", "wake two@a"]
    first.stop()  # a clean shutdown releases the leases at once
    second.tick()
    assert log[-4:] == ["stop two@a", "stop one@a", "start one@b", "start two@b"]


def test_an_expired_lease_moves_and_the_old_holder_stops_its_controller(inprocess: InProcess) -> None:
    log: list[str] = []
    first, second = _leadership(inprocess, log, "a"), _leadership(inprocess, log, "b")
    first.tick()
    with inprocess.db.write() as session:  # as if a has not renewed for longer than the lease lasts
        session.execute(update(ControllerLease).values(expires_at=0))
    second.tick()
    first.tick()
    assert log == ["start one@a", "start two@a", "start one@b", "start two@b", "stop one@a", "stop two@a"]


def test_a_dead_local_holder_is_replaced_at_once(inprocess: InProcess) -> None:
    log: list[str] = []
    ghost = Holder(host=Holder.me().host, pid=2**22 + 12345, started=1.0, nonce="gone")
    assert ghost.is_dead_local_process()
    with inprocess.db.write() as session:
        session.add(ControllerLease(name="one", holder=str(ghost), expires_at=int(time.time() * 1000) + 60_000))
    _leadership(inprocess, log, "a").tick()
    assert log == ["start one@a", "start two@a"]


@pytest.fixture
def two_servers(backend: str, tmp_path: Path) -> Iterator[tuple[LiveServer, LiveServer]]:
    if backend != "postgres":
        pytest.skip("several servers share a PostgreSQL database (SQLite is one server's file)")
    with fresh_database(backend, tmp_path) as url:
        env = {"OPENARTS_COMPUTE_CPUS": "2"}
        first = LiveServer(tmp_path / "data", url, env=env)
        first.start()
        second = LiveServer(tmp_path / "data", url, env=env)  # same machine: the same data folder
        second.start()
        try:
            yield first, second
        finally:
            first.stop()
            second.stop()


@pytest.mark.timeout(180)
def test_the_other_server_finishes_a_workflow_when_one_is_killed(two_servers: tuple[LiveServer, LiveServer]) -> None:
    first, second = two_servers
    client = second.client()
    steps: list[dict[str, Any]] = [
        {
            "name": name,
            "type": "job",
            "properties": {
                "kind": "job",
                "metadata": {"name": name},
                "algorithm": {"command": 'python -c "import time; time.sleep(2)"'},
                "spec": {"resource": {"flavor_id": "modelarts.vm.cpu.2u", "node_count": 1}},
            },
            "depend_steps": depends,
        }
        for name, depends in (("first", []), ("second", ["first"]))
    ]
    workflow = client.create_workflow(CreateWorkflowRequest(body={"name": "survivor", "steps": steps}))
    execution = client.create_workflow_execution(
        CreateWorkflowExecutionRequest(workflow_id=workflow.workflow_id, body={})
    )
    first.stop(signal.SIGKILL)  # it started first, so its controllers hold the leases
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shown = client.show_workflow_execution(
            ShowWorkflowExecutionRequest(workflow_id=workflow.workflow_id, execution_id=execution.execution_id)
        )
        if shown.status in ("completed", "abnormal", "stopped"):
            break
        time.sleep(0.2)
    assert shown.status == "completed", [(s.step_name, s.status) for s in shown.steps_execution]
    assert "lease training: held by this server" in second.log()
