"""The gateway routes a service whose row says running even before this server's routing table follows the
rows (the controller rebuilds the table after its pass; other servers follow every half second)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from openarts.services.routing import TABLE
from openarts.services.tables import Service, ServiceInstance
from tests.conftest import InProcess


class _Model(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps({"version": "from-the-row"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def model_port() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Model)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _service(inprocess: InProcess, status: str, port: int) -> str:
    service_id = str(uuid.uuid4())
    model_id = str(uuid.uuid4())
    with inprocess.db.write() as session:
        session.add(
            Service(
                id=service_id,
                project_id=inprocess.admin["project_id"],
                workspace_id="0",
                user_id=inprocess.admin["user_id"],
                user_name="admin",
                name=f"svc-{service_id[:8]}",
                infer_type="real-time",
                status=status,
                config=[{"model_id": model_id, "weight": "100", "instance_count": 1}],
                schedule=None,
                due_time=None,
                cpus=1.0,
                memory_gb=1.0,
                publish_at=0,
                update_time=0,
                transition_at=0,
            )
        )
        session.flush()
        session.add(
            ServiceInstance(
                id=f"{service_id[:8]}-i",
                service_id=service_id,
                model_id=model_id,
                config_index=0,
                port=port,
                ready=True,
            )
        )
    return service_id


def test_a_running_row_is_routed_before_the_table_follows(inprocess: InProcess, model_port: int) -> None:
    service_id = _service(inprocess, "running", model_port)
    assert TABLE.get(service_id) is None  # no controller runs here: only the row says where to go
    answer = inprocess.signed("POST", f"/v1/infers/{service_id}", body={"values": [1]})
    assert answer.status_code == 200 and answer.json() == {"version": "from-the-row"}
    assert TABLE.get(service_id) is not None
    TABLE.forget(service_id)


def test_a_row_not_serving_is_still_refused(inprocess: InProcess, model_port: int) -> None:
    service_id = _service(inprocess, "deploying", model_port)
    refused = inprocess.signed("POST", f"/v1/infers/{service_id}", body={"values": [1]})
    assert refused.status_code == 400 and refused.json()["error_code"] == "ModelArts.4203"
    assert TABLE.get(service_id) is None
