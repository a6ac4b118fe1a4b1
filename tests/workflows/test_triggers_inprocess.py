"""Schedules, subscriptions and packages with a moved clock: the app, the workflow engine's request path and
the trigger controller in this process over a real database; the test runs the controller's passes.

Condition-only workflows finish inside the request that starts them; a workflow with a job step stays
running here (no training controller runs in this process), which is what ``on_running`` needs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from openarts.app import create_app
from openarts.core.services import Services
from openarts.workflows.triggers.controller import TriggerController
from openarts.workflows.triggers.tables import ScheduleRun, WebhookDelivery
from tests.conftest import InProcess
from tests.workflows.workflow_support import condition, job_step

TOPIC = "urn:smn:local:0:workflow-events"


def _controller(inprocess: InProcess) -> TriggerController:
    controller = TriggerController(Services(settings=inprocess.settings, db=inprocess.db, clock=inprocess.clock))
    controller.configure()  # no thread: the test runs the passes itself
    return controller


def _post(inprocess: InProcess, path: str, body: Any) -> Any:
    response = inprocess.signed("POST", f"/v2/{inprocess.admin['project_id']}/workflows{path}", body=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _executions(inprocess: InProcess, workflow_id: str) -> list[dict[str, Any]]:
    response = inprocess.signed("GET", f"/v2/{inprocess.admin['project_id']}/workflows/{workflow_id}/executions")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _runs(inprocess: InProcess) -> list[tuple[int, str]]:
    with inprocess.db.read() as session:
        return [(run.attempt, run.status) for run in session.scalars(select(ScheduleRun).order_by(ScheduleRun.id))]


def test_a_schedule_fires_each_slot_once_and_cancels_while_a_run_goes_on(inprocess: InProcess) -> None:
    workflow = _post(inprocess, "", {"name": "nightly", "steps": [job_step("train", "python -c pass")]})
    workflow_id = workflow["workflow_id"]
    schedule = _post(
        inprocess,
        f"/{workflow_id}/schedules",
        {
            "type": "time",
            "action": "run",
            "content": {"cron": "*/10 * * * * *", "method": "fixed"},
            "policies": {"on_failure": "retry", "on_running": "cancel"},
        },
    )
    assert schedule["enable"] is True and schedule["content"]["cron"] == "*/10 * * * * *"
    controller = _controller(inprocess)
    controller.reconcile()
    assert _executions(inprocess, workflow_id) == []  # no slot has come yet

    inprocess.clock.advance(10)
    controller.reconcile()
    controller.reconcile()  # the same slot never fires twice
    assert len(_executions(inprocess, workflow_id)) == 1
    inprocess.clock.advance(10)
    controller.reconcile()  # the first run is still going (its job is queued): this slot is skipped
    assert len(_executions(inprocess, workflow_id)) == 1
    assert _runs(inprocess) == [(1, "started"), (1, "skipped")]


def test_missed_slots_catch_up_once_and_a_disabled_schedule_stays_quiet(inprocess: InProcess) -> None:
    steps = [condition("check", 1, 1)]
    workflow_id = _post(inprocess, "", {"name": "hourly", "steps": steps})["workflow_id"]
    schedule = _post(
        inprocess, f"/{workflow_id}/schedules", {"content": {"cron": "0 0 * * * *"}, "policies": {"on_running": "run"}}
    )
    controller = _controller(inprocess)
    inprocess.clock.advance(5 * 3600)  # five slots pass while "the server is down"
    controller.reconcile()
    controller.reconcile()
    assert len(_executions(inprocess, workflow_id)) == 1  # one catch-up run, not five
    disabled = inprocess.signed(
        "PUT",
        f"/v2/{inprocess.admin['project_id']}/workflows/{workflow_id}/schedules/{schedule['uuid']}",
        body={"enable": False},
    )
    assert disabled.status_code == 200 and disabled.json()["enable"] is False
    inprocess.clock.advance(3 * 3600)
    controller.reconcile()
    assert len(_executions(inprocess, workflow_id)) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"content": {"cron": "0 0 * * *"}}, "six-field"),
        ({"content": {"cron": "0 0 0 * * Funday"}}, "six-field"),
        ({"content": {"cron": "0 0 0 * * Thu", "method": "random"}}, "method"),
        ({"type": "event", "content": {"cron": "0 0 0 * * Thu"}}, "type"),
        ({"content": {"cron": "0 0 0 * * Thu"}, "policies": {"on_running": "queue"}}, "on_running"),
    ],
)
def test_bad_schedules_are_400(inprocess: InProcess, body: dict[str, Any], fragment: str) -> None:
    workflow_id = _post(inprocess, "", {"name": "bad-cron", "steps": [condition("c", 1, 1)]})["workflow_id"]
    response = inprocess.signed(
        "POST", f"/v2/{inprocess.admin['project_id']}/workflows/{workflow_id}/schedules", body=body
    )
    assert response.status_code == 400 and fragment in response.json()["error_msg"]


class _Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []
    fail_first: ClassVar[int] = 0

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if _Hook.fail_first > 0:
            _Hook.fail_first -= 1
            self.send_response(503)
        else:
            _Hook.received.append(body)
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def webhook() -> Iterator[str]:
    _Hook.received, _Hook.fail_first = [], 1
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()


def test_subscriptions_post_matching_transitions_with_retries(inprocess: InProcess, webhook: str) -> None:
    settings = replace(inprocess.settings, workflow_webhooks=json.dumps({TOPIC: webhook}))
    inprocess.settings = settings
    inprocess.http = TestClient(create_app(settings, db=inprocess.db, clock=inprocess.clock))
    workflow_id = _post(inprocess, "", {"name": "watched", "steps": [condition("check", 1, 1)]})["workflow_id"]
    refused = inprocess.signed(
        "POST",
        f"/v2/{inprocess.admin['project_id']}/workflows/{workflow_id}/subscriptions",
        body={"topic_urns": ["urn:smn:elsewhere"], "events": ["*:completed"]},
    )
    assert refused.status_code == 400 and "configuration" in refused.json()["error_msg"]
    subscription = _post(
        inprocess,
        f"/{workflow_id}/subscriptions",
        {
            "topic_urns": [TOPIC],
            "entity": "238947895793875835893490",
            "events": ["*:failed,completed", "check:completed"],
        },
    )
    assert subscription["events"] == ["*:failed,completed", "check:completed"]
    controller = _controller(inprocess)
    _post(inprocess, f"/{workflow_id}/executions", {})
    controller.reconcile()  # the webhook answers 503 to the first delivery: it is retried after a backoff
    inprocess.clock.advance(5)
    controller.reconcile()
    inprocess.clock.advance(5)
    controller.reconcile()
    subjects = sorted((event["step_name"] or "*", event["status"]) for event in _Hook.received)
    assert subjects == [("*", "completed"), ("check", "completed")]
    with inprocess.db.read() as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert {d.status for d in deliveries} == {"delivered"}
        assert sorted(d.attempts for d in deliveries) == [1, 2]


def test_a_package_limits_the_runs_and_service_auth_answers_from_it(inprocess: InProcess) -> None:
    workflow_id = _post(inprocess, "", {"name": "paid", "steps": [condition("check", 1, 1)]})["workflow_id"]
    package = _post(
        inprocess,
        f"/{workflow_id}/service/packages",
        {
            "pool_id": "pool-9ad2-04f258c84780d5a52f3bc00dc15aa5e7",
            "service_id": "f4e78e17-5af4-4b65-b677-382d0d2e1b84",
            "order": {
                "id": "CS2210201956MBE5Z",
                "sku": {"code": "modelarts.dplan.workflow", "period": "day", "queries_limit": 2, "price": 10},
                "sku_count": 1,
            },
        },
    )
    assert package["status"] == "available" and package["consume_limit"] == 2
    auth = {"main_service_id": "f4e78e17-5af4-4b65-b677-382d0d2e1b84", "content_id": workflow_id}
    assert _post(inprocess, "/service/auth", {**auth, "consume": {"period": "day", "value": 2}}) == {"result": "true"}
    _post(inprocess, f"/{workflow_id}/executions", {})
    _post(inprocess, f"/{workflow_id}/executions", {})
    refused = inprocess.signed(
        "POST", f"/v2/{inprocess.admin['project_id']}/workflows/{workflow_id}/executions", body={}
    )
    assert refused.status_code == 400 and "service packages" in refused.json()["error_msg"]
    assert len(_executions(inprocess, workflow_id)) == 2  # the refused one left nothing behind
    assert _post(inprocess, "/service/auth", auth) == {"result": "false"}
    inprocess.clock.advance(24 * 3600)  # a new day, a new allowance
    _post(inprocess, f"/{workflow_id}/executions", {})
