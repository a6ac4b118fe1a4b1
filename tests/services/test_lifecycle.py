"""Service management through signed HTTP: stop and start, a new config, events, logs, monitor,
specifications, bad requests, a crashed instance, and a server killed with SIGKILL."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import psutil

from tests.services.support import (
    Api,
    deploy,
    entry,
    instance_processes,
    published_model,
    wait_gone,
    wait_service,
    write_custom_package,
)

SERVICES = "/v1/{project_id}/services"


def test_stop_start_update_and_delete(api: Api, unique: Callable[[str], str], cleanup: list[str]) -> None:
    first = published_model(api, unique("m"), write_custom_package(api.server, "lc-bucket", unique("a"), "v1"))
    second = published_model(
        api, unique("m"), write_custom_package(api.server, "lc-bucket", unique("b"), "v2"), version="1.0.1"
    )
    name = unique("svc")
    schedule = [{"type": "stop", "time_unit": "HOURS", "duration": 1}]
    service_id = deploy(api, name, [entry(first)], schedule=schedule, description="lifecycle")
    cleanup.append(service_id)
    shown = wait_service(api, service_id, "running")
    assert shown["due_time"] > shown["publish_at"] and shown["schedule"] == schedule
    address = shown["access_address"]
    assert api.call("POST", address, {"values": [1]}).json()["version"] == "v1"
    again = api.call("POST", SERVICES, {"service_name": name, "infer_type": "real-time", "config": [entry(first)]})
    assert again.status_code == 409 and again.json()["error_code"] == "ModelArts.3503"
    # Stop: calls are refused; stopping twice is a 3519.
    api.ok("PUT", f"{SERVICES}/{service_id}", {"status": "stopped"})
    assert wait_service(api, service_id, "stopped")["status"] == "stopped"
    refused = api.call("POST", address, {"values": [1]})
    assert refused.status_code == 400 and refused.json()["error_code"] == "ModelArts.4203"
    twice = api.call("PUT", f"{SERVICES}/{service_id}", {"status": "stopped"})
    assert twice.status_code == 400 and twice.json()["error_code"] == "ModelArts.3519"
    assert not [p for p in instance_processes(api.server.data_dir) if service_id[:8] in " ".join(p.cmdline())]
    # Start again, then a new config: the other model replaces the first.
    api.ok("PUT", f"{SERVICES}/{service_id}", {"status": "running"})
    wait_service(api, service_id, "running")
    api.ok("PUT", f"{SERVICES}/{service_id}", {"config": [entry(second)], "description": "updated"})
    updated = wait_service(api, service_id, "running")
    assert updated["description"] == "updated" and updated["config"][0]["model_id"] == second
    assert api.call("POST", address, {"values": [1]}).json()["version"] == "v2"
    logs = api.ok("GET", f"{SERVICES}/{service_id}/logs")["logs"]
    assert [log["result"] for log in logs] == ["SUCCESS"]
    events = api.ok("GET", f"{SERVICES}/{service_id}/events?order=asc")["events"]
    infos = [event["event_info"] for event in events]
    assert infos[0] == "start to deploy service" and "The service has been stopped" in infos
    abnormal = api.ok("GET", f"{SERVICES}/{service_id}/events?event_type=abnormal")
    assert abnormal["count"] == 0
    monitor = api.ok("GET", f"{SERVICES}/{service_id}/monitor")
    assert monitor["monitors"][0]["model_id"] == second and monitor["service_instance_count"] == 1
    listed = api.ok("GET", f"{SERVICES}?service_name={name}")
    assert [s["service_id"] for s in listed["services"]] == [service_id]
    assert api.ok("GET", f"{SERVICES}?model_id={second}")["total_count"] == 1
    # A model a service uses is not deleted: it lands in the failed list.
    kept = api.ok("DELETE", f"/v1/{{project_id}}/models/{second}")
    assert kept["delete_success_list"] == [] and kept["delete_failed_list"][0]["error_code"] == "ModelArts.3009"
    api.ok("DELETE", f"{SERVICES}/{service_id}")
    wait_gone(api, service_id)
    assert api.ok("DELETE", f"/v1/{{project_id}}/models/{second}")["delete_success_list"] == [second]


def test_bad_deploys(api: Api, unique: Callable[[str], str]) -> None:
    model_id = published_model(api, unique("m"), write_custom_package(api.server, "lc-bucket", unique("x")))

    def refused(config: list[dict[str, object]], code: str, status: int = 400, **extra: object) -> None:
        body = {"service_name": unique("bad"), "infer_type": "real-time", "config": config, **extra}
        response = api.call("POST", SERVICES, body)
        assert response.status_code == status, response.text
        assert response.json()["error_code"] == code, response.text

    refused([entry("00000000-0000-0000-0000-000000000000")], "ModelArts.3507", 404)
    refused([entry(model_id, 50)], "ModelArts.3037")
    refused([entry(model_id, 50), entry(model_id, 50)], "ModelArts.3516")
    refused([{**entry(model_id), "instance_count": 0}], "ModelArts.3037")
    refused([{**entry(model_id), "specification": "modelarts.vm.gpu.huge"}], "ModelArts.3037")
    refused([{**entry(model_id), "custom_spec": {"cpu": 64, "memory": 1024}, "instance_count": 2}], "ModelArts.3952")
    refused([entry(model_id)], "ModelArts.3037", infer_type="batch")
    refused([], "ModelArts.3610")
    refused([entry(model_id)], "ModelArts.3037", schedule=[{"type": "stop", "time_unit": "YEARS", "duration": 1}])
    specs = api.ok("GET", f"{SERVICES}/specifications")["specifications"]
    assert "modelarts.vm.cpu.2u" in {spec["specification"] for spec in specs}
    assert api.call("GET", f"{SERVICES}/nope").json()["error_code"] == "ModelArts.3502"


def test_crashed_instance_and_killed_server(api: Api, unique: Callable[[str], str], cleanup: list[str]) -> None:
    model_id = published_model(api, unique("m"), write_custom_package(api.server, "lc-bucket", unique("k")))
    service_id = deploy(api, unique("svc"), [entry(model_id)])
    cleanup.append(service_id)
    address = wait_service(api, service_id, "running")["access_address"]
    # A crash in the middle of a call: that call fails with a 5xx envelope, the instance comes back.
    crashed = api.call("POST", address, {"crash": True})
    assert crashed.status_code == 500 and crashed.json()["error_code"] == "ModelArts.4503", crashed.text
    deadline = time.monotonic() + 30
    while not api.ok("GET", f"{SERVICES}/{service_id}/events?event_type=abnormal")["events"]:
        assert time.monotonic() < deadline, "the crash was not noticed"
        time.sleep(0.1)
    while api.ok("GET", f"{SERVICES}/{service_id}")["config"][0]["status"] != "ready":
        assert time.monotonic() < deadline, "the instance did not come back"
        time.sleep(0.1)
    assert wait_service(api, service_id, "running")["status"] == "running"
    assert api.call("POST", address, {"values": [2]}).json()["doubled"] == [4.0]
    # kill -9 of the server: the instance goes on, and the restarted server adopts it.
    before = {p.pid for p in instance_processes(api.server.data_dir)}
    assert api.server.process is not None
    os.kill(api.server.process.pid, signal.SIGKILL)
    api.server.process.wait()
    api.server.start()
    assert wait_service(api, service_id, "running")["status"] == "running"
    assert api.call("POST", address, {"values": [3]}).json()["doubled"] == [6.0]
    after = {p.pid for p in instance_processes(api.server.data_dir)}
    assert before & after, "the instance was restarted instead of re-adopted"
    assert all(psutil.pid_exists(pid) for pid in before & after)


def test_a_deploy_interrupted_by_kill_9_finishes_with_one_instance(
    api: Api, unique: Callable[[str], str], cleanup: list[str]
) -> None:
    model_id = published_model(api, unique("m"), write_custom_package(api.server, "lc-bucket", unique("d")))
    service_id = deploy(api, unique("svc"), [entry(model_id)])
    cleanup.append(service_id)
    # Killed while deploying: the row says so (the answer above was durable), whatever the controller had done.
    assert api.server.process is not None
    os.kill(api.server.process.pid, signal.SIGKILL)
    api.server.process.wait()
    api.server.start()
    shown = wait_service(api, service_id, "running", "failed")
    assert shown["status"] == "running", shown.get("error_msg")
    assert api.call("POST", shown["access_address"], {"values": [5]}).json()["doubled"] == [10.0]
    # The model servers themselves (each runs under a runner, whose command line names it too).
    commands = [" ".join(p.cmdline()) for p in instance_processes(api.server.data_dir)]
    servers = [c for c in commands if service_id[:8] in c and "import runner" not in c]
    assert len(servers) == 1, commands  # adopted or launched once, never twice
