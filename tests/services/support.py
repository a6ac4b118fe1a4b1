"""Helpers of the model and service tests: signed HTTP (the SDK has no v1 model or service calls), model
packages written into a live server's object store, waiting for statuses, and cleaning up processes."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from tests.support.server import LiveServer
from tests.support.signing import sign

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
TINY = {"cpu": 0.1, "memory": 256}  # a custom_spec small enough for many instances on a 2-CPU pool


class Api:
    """Signed requests to a live server as one user (the admin by default)."""

    def __init__(self, server: LiveServer, creds: dict[str, Any] | None = None) -> None:
        self.server = server
        self.creds = creds or server.admin
        self.client = httpx.Client(timeout=60)

    @property
    def project(self) -> str:
        return str(self.creds["project_id"])

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.server.url + path.replace("{project_id}", self.project)

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> httpx.Response:
        url = self.url(path)
        content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        signed = sign(
            method,
            url,
            ak=self.creds["access_key"],
            sk=self.creds["secret_key"],
            project_id=self.project,
            body=content,
            headers=headers,
        )
        return self.client.request(method, url, content=content or None, headers=signed)

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        response = self.call(method, path, body)
        assert response.status_code == 200, (method, path, response.status_code, response.text)
        return response.json()


# --- packages -------------------------------------------------------------------------------------------------


def obs_dir(server: LiveServer, bucket: str, prefix: str) -> Path:
    folder = server.data_dir / "obs" / bucket / prefix
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def sklearn_config(**extra: Any) -> dict[str, Any]:
    row = {"type": "object", "properties": {name: {"type": "number"} for name in FEATURES}}
    return {
        "model_type": "Scikit_Learn",
        "model_algorithm": "predict_analysis",
        "runtime": "python3.6",
        "metrics": {"f1": 0.9, "accuracy": 0.95},
        "apis": [
            {
                "procotol": "http",  # the official samples' typo, tolerated
                "url": "/",
                "method": "post",
                "request": {
                    "Content-type": "applicaton/json",
                    "data": {
                        "type": "object",
                        "properties": {
                            "data": {
                                "type": "object",
                                "properties": {"req_data": {"type": "array", "items": row}},
                                "required": ["req_data"],
                            }
                        },
                        "required": ["data"],
                    },
                },
                "response": {"Content-type": "application/json", "data": {"type": "object"}},
            }
        ],
        "dependencies": [
            {
                "installer": "pip",
                "packages": [{"package_name": "scikit-learn", "package_version": "1.0", "restraint": "ATLEAST"}],
            }
        ],
        **extra,
    }


def write_sklearn_package(server: LiveServer, bucket: str, prefix: str) -> str:
    """A tiny scikit-learn classifier saved with joblib as ``model/model.m``; returns the source_location."""
    import joblib  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    rows = [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [6.7, 3.1, 4.4, 1.4], [6.3, 2.5, 4.9, 1.5]]
    model = LogisticRegression().fit(rows, [0, 0, 1, 1])
    folder = obs_dir(server, bucket, prefix) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / "model.m")
    (folder / "config.json").write_text(json.dumps(sklearn_config()))
    return f"/{bucket}/{prefix}/"


CUSTOM_SERVICE = '''
import os

from model_service.model_service import SingleNodeService
from helper import scale


class EchoService(SingleNodeService):
    """Doubles every number of "values"; a missing key is the model's 400."""

    def __init__(self, model_name, model_path):
        super().__init__(model_name, model_path)
        self.version = open(model_path + "/version.txt").read().strip()

    def _preprocess(self, data):
        if data.get("crash"):
            os._exit(3)  # a crash in the middle of a call
        return [float(v) for v in data["values"]]

    def _inference(self, data):
        return [scale(v) for v in data]

    def _postprocess(self, data):
        return {"doubled": data, "version": self.version}
'''


def write_custom_package(
    server: LiveServer, bucket: str, prefix: str, version: str = "v1", script: str = CUSTOM_SERVICE
) -> str:
    folder = obs_dir(server, bucket, prefix) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "customize_service.py").write_text(script)
    (folder / "helper.py").write_text("def scale(value):\n    return value * 2\n")
    (folder / "version.txt").write_text(version)
    config = {
        "model_type": "Custom",
        "model_algorithm": "echo",
        "apis": [
            {
                "url": "/",
                "method": "post",
                "request": {"Content-type": "application/json", "data": {"type": "object"}},
                "response": {"Content-type": "application/json", "data": {"type": "object"}},
            }
        ],
    }
    (folder / "config.json").write_text(json.dumps(config))
    return f"/{bucket}/{prefix}/"


def create_model(
    api: Api, name: str, source: str, model_type: str | None = None, version: str = "1.0.0", **extra: Any
) -> str:
    body: dict[str, Any] = {"model_name": name, "model_version": version, "source_location": source, **extra}
    if model_type:
        body["model_type"] = model_type
    return str(api.ok("POST", "/v1/{project_id}/models", body)["model_id"])


def wait_model(api: Api, model_id: str, *wanted: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        model: dict[str, Any] = api.ok("GET", f"/v1/{{project_id}}/models/{model_id}")
        if model["model_status"] in wanted:
            return model
        assert time.monotonic() < deadline, f"{model_id} is {model['model_status']}, not {wanted}"
        time.sleep(0.1)


def published_model(api: Api, name: str, source: str, **extra: Any) -> str:
    model_id = create_model(api, name, source, **extra)
    model = wait_model(api, model_id, "published", "failed")
    assert model["model_status"] == "published", model.get("failed_reason")
    return model_id


def deploy(api: Api, name: str, config: list[dict[str, Any]], **extra: Any) -> str:
    body = {"service_name": name, "infer_type": "real-time", "config": config, **extra}
    return str(api.ok("POST", "/v1/{project_id}/services", body)["service_id"])


def entry(model_id: str, weight: int = 100, count: int = 1) -> dict[str, Any]:
    return {
        "model_id": model_id,
        "weight": str(weight),
        "specification": "custom",
        "custom_spec": TINY,
        "instance_count": count,
    }


def wait_service(api: Api, service_id: str, *wanted: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        service: dict[str, Any] = api.ok("GET", f"/v1/{{project_id}}/services/{service_id}")
        if service["status"] in wanted:
            return service
        assert time.monotonic() < deadline, f"{service_id} is {service['status']}, not {wanted}: {service['error_msg']}"
        time.sleep(0.1)


def wait_gone(api: Api, service_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.call("GET", f"/v1/{{project_id}}/services/{service_id}").status_code == 404:
            return
        time.sleep(0.1)
    raise AssertionError(f"service {service_id} was not deleted")


def predict_body(*rows: list[float]) -> dict[str, Any]:
    return {"meta": {"uuid": "u-1"}, "data": {"req_data": [dict(zip(FEATURES, row, strict=True)) for row in rows]}}


# --- cleanup ----------------------------------------------------------------------------------------------------


def delete_all_services(api: Api) -> None:
    listed = api.ok("GET", "/v1/{project_id}/services?limit=1000")["services"]
    ids = [service["service_id"] for service in listed]
    if ids:
        api.call("DELETE", "/v1/{project_id}/services/" + ",".join(ids))
    for service_id in ids:
        try:
            wait_gone(api, service_id)
        except AssertionError:
            continue


def instance_processes(data_dir: Path) -> list[psutil.Process]:
    markers = (str(data_dir / "services") + os.sep, str(data_dir / "models") + os.sep)
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in process.info["cmdline"] or [] for marker in markers):
                found.append(process)
        except psutil.Error:
            continue
    return found


def kill_leftovers(data_dir: Path) -> int:
    """The last resort of a fixture: SIGKILL any model server still running from this data directory."""
    killed = 0
    for process in instance_processes(data_dir):
        try:
            process.send_signal(signal.SIGKILL)
            killed += 1
        except psutil.Error:
            continue
    return killed


# --- packages of any model type, and services over several models ---------------------------------------------


def model_folder(server: LiveServer, bucket: str, prefix: str) -> Path:
    """The (new, empty) ``model/`` folder of a package in the live server's store; ``/{bucket}/{prefix}/`` is
    the package's source_location."""
    folder = obs_dir(server, bucket, prefix) / "model"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish_all(api: Api, packages: list[tuple[str, str]], **extra: Any) -> list[str]:
    """Models created from ``(model_name, source_location)`` pairs all at once, then waited for until each is
    published (the controller checks them in one pass); their ids, in order."""
    ids = [create_model(api, name, source, **extra) for name, source in packages]
    for model_id in ids:
        model = wait_model(api, model_id, "published", "failed")
        assert model["model_status"] == "published", (model["model_name"], model.get("failed_reason"))
    return ids


def even_entries(model_ids: list[str]) -> list[dict[str, Any]]:
    """A service config splitting calls evenly across the models (weights summing to 100), one instance each."""
    share, rest = divmod(100, len(model_ids))
    return [entry(model_id, share + (1 if i < rest else 0)) for i, model_id in enumerate(model_ids)]


def calls_per_model(api: Api, service_id: str) -> dict[str, int]:
    """Each model's invocation count, from the service's monitor."""
    monitor = api.ok("GET", f"/v1/{{project_id}}/services/{service_id}/monitor")
    return {m["model_id"]: int(m["invocation_times"]) for m in monitor["monitors"]}
