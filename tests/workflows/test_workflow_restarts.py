"""``kill -9`` the server in the middle of executions: after the restart each goes on from where it
was. Finished steps are not run again, a running job step follows its job to the end, a waiting step
keeps waiting."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.workflows.test_executions_sdk import _step_action
from tests.workflows.workflow_support import condition, create, job_step, run, statuses, step_of, wait


@pytest.fixture
def own_server(backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    with fresh_database(backend, tmp_path) as url:
        env = {"OPENARTS_COMPUTE_CPUS": "2", "OPENARTS_COMPUTE_MEMORY_GB": "32"}
        live = LiveServer(tmp_path / "data", url, env=env)
        live.start()
        try:
            yield live
        finally:
            live.stop()


def test_executions_continue_after_kill_9(own_server: LiveServer) -> None:
    client = own_server.client()
    workflow = create(
        client,
        {
            "name": "restart",
            "parameters": [{"name": "later", "type": "bool", "delay": True}],
            "steps": [
                condition("first", 1, 1),
                job_step("sleeper", 'python -c "import time; time.sleep(2)"', depend=["first"]),
                condition("after", 2, 1, op=">", depend=["sleeper"]),
                condition("waiting", "$ref/parameters/later", True, depend=["first"]),
            ],
        },
    )
    wid = workflow.workflow_id
    execution = run(client, wid)
    eid = execution.execution_id
    running = wait(client, wid, eid, until=lambda e: statuses(e)["sleeper"] == "running")
    first_events = step_of(running, "first").events
    job = json.loads(step_of(running, "sleeper").instance_id)["job_id"]

    own_server.stop(signal.SIGKILL)
    own_server.start()
    client = own_server.client()
    done = wait(client, wid, eid, until=lambda e: statuses(e)["after"] == "completed")
    assert statuses(done) == {
        "first": "completed",
        "sleeper": "completed",
        "after": "completed",
        "waiting": "wait_inputs",
    }
    assert step_of(done, "first").events == first_events
    assert json.loads(step_of(done, "sleeper").instance_id)["job_id"] == job
    assert done.status == "running"
    own_server.stop(signal.SIGKILL)
    own_server.start()
    client = own_server.client()
    waiting = step_of(wait(client, wid, eid, until=lambda e: True), "waiting")
    assert waiting.status == "wait_inputs"
    _step_action(
        client, wid, eid, waiting.uuid, {"action_name": "continue", "parameters": [{"name": "later", "value": True}]}
    )
    assert wait(client, wid, eid).status == "completed"
