"""Services deployed from real packages, called through their access_address on the OpenArts port."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import httpx

from tests.services.support import (
    Api,
    deploy,
    entry,
    predict_body,
    published_model,
    wait_service,
    write_custom_package,
    write_sklearn_package,
)


def test_sklearn_model_is_deployed_and_called(api: Api, unique: Callable[[str], str], cleanup: list[str]) -> None:
    source = write_sklearn_package(api.server, "svc-bucket", unique("sk"))
    model_id = published_model(api, unique("iris"), source)
    service_id = deploy(api, unique("iris-svc"), [entry(model_id)])
    cleanup.append(service_id)
    service = wait_service(api, service_id, "running", "failed")
    assert service["status"] == "running", service["error_msg"]
    address = service["access_address"]
    assert address == f"{api.server.url}/v1/infers/{service_id}"
    answer = api.call("POST", address, predict_body([5.0, 3.4, 1.5, 0.2], [6.5, 2.8, 4.6, 1.5]))
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "data": {"resp_data": [{"predictresult": 0}, {"predictresult": 1}]},
        "meta": {"uuid": "u-1"},
    }
    # The model's own 400 for a request its apis schema refuses, and the counters.
    bad = api.call("POST", address, {"data": {"rows": []}})
    assert bad.status_code == 400 and bad.json()["erno"] == "PY.0101", bad.text
    shown = api.ok("GET", f"/v1/{{project_id}}/services/{service_id}")
    assert (shown["invocation_times"], shown["failed_times"]) == (2, 1)
    assert shown["config"][0]["status"] == "ready"
    # Without credentials: refused before anything reaches the model.
    anonymous = httpx.post(address, json=predict_body([5.0, 3.4, 1.5, 0.2]), timeout=10)
    assert anonymous.status_code == 401 and anonymous.json()["error_code"] == "APIGW.0301"


def test_custom_models_split_by_weight(api: Api, unique: Callable[[str], str], cleanup: list[str]) -> None:
    first = published_model(api, unique("echo"), write_custom_package(api.server, "svc-bucket", unique("c1"), "v1"))
    second = published_model(
        api, unique("echo"), write_custom_package(api.server, "svc-bucket", unique("c2"), "v2"), version="1.0.1"
    )
    service_id = deploy(api, unique("echo-svc"), [entry(first, 70, count=2), entry(second, 30)])
    cleanup.append(service_id)
    service = wait_service(api, service_id, "running", "failed")
    assert service["status"] == "running", service["error_msg"]
    versions: Counter[str] = Counter()
    for _ in range(20):
        answer = api.call("POST", service["access_address"], {"values": [1, 2.5]})
        assert answer.status_code == 200, answer.text
        assert answer.json()["doubled"] == [2.0, 5.0]
        versions[answer.json()["version"]] += 1
    assert versions == {"v1": 14, "v2": 6}
    missing = api.call("POST", service["access_address"], {"other": 1})
    assert missing.status_code == 400 and missing.json()["erno"] == "MR.0105"
    monitor = api.ok("GET", f"/v1/{{project_id}}/services/{service_id}/monitor")
    calls = {m["model_id"]: int(m["invocation_times"]) for m in monitor["monitors"]}
    assert sum(calls.values()) == 21
