"""Helpers of the notebook tests: the seed's create body, waiting for a status, running code in a kernel
through an instance's proxied URL, finding an instance's processes, and cleaning up."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateNotebookRequest,
    DeleteNotebookRequest,
    ListAllNotebooksRequest,
    ListImageRequest,
    NotebookCreateRequest,
    ShowNotebookRequest,
    StopNotebookRequest,
    VolumeMountRequest,
)
from websockets.sync.client import connect

SEED_IMAGE_ID = "e1a07296-22a8-4f05-8bc8-e936c8e54090"  # the seed's create example names this image
START_TIMEOUT_S = 150.0


def seed_body(name: str, image_id: str = SEED_IMAGE_ID, **overrides: Any) -> NotebookCreateRequest:
    """The seed's create-notebook example, with a name of the test's own."""
    values: dict[str, Any] = {
        "name": name,
        "feature": "NOTEBOOK",
        "workspace_id": "0",
        "description": "api-test",
        "flavor": "modelarts.vm.cpu.2u",
        "image_id": image_id,
        "volume": VolumeMountRequest(category="evs", ownership="managed", capacity=50),
    }
    values.update(overrides)
    return NotebookCreateRequest(**values)


def create(client: Any, name: str, **overrides: Any) -> Any:
    return client.create_notebook(CreateNotebookRequest(body=seed_body(name, **overrides)))


def show(client: Any, notebook_id: str) -> Any:
    return client.show_notebook(ShowNotebookRequest(id=notebook_id))


def wait_status(client: Any, notebook_id: str, *wanted: str, timeout: float = START_TIMEOUT_S) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        notebook = show(client, notebook_id)
        if notebook.status in wanted:
            return notebook
        if time.monotonic() > deadline:
            raise AssertionError(f"{notebook_id} is {notebook.status}, not {wanted}: {notebook.fail_reason}")
        time.sleep(0.1)


def wait_gone(client: Any, notebook_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            show(client, notebook_id)
        except ClientRequestException as exc:
            assert exc.error_code == "ModelArts.6309"
            return
        time.sleep(0.1)
    raise AssertionError(f"{notebook_id} was not deleted")


def image_ids(client: Any) -> list[str]:
    return [image.id for image in client.list_image(ListImageRequest(limit=100)).data]


# --- JupyterLab through the proxy ----------------------------------------------------------------------


def api_url(instance_url: str) -> str:
    """``.../authoring/{id}/lab`` to ``.../authoring/{id}/`` (Jupyter's base URL)."""
    return instance_url.rsplit("/lab", 1)[0] + "/"


def jupyter_get(instance_url: str, token: str, path: str) -> httpx.Response:
    return httpx.get(api_url(instance_url) + path, headers={"Authorization": f"token {token}"}, timeout=20)


def run_code(instance_url: str, token: str, code: str, timeout: float = 60.0) -> str:
    """Start a kernel through the proxy, execute ``code`` over the channels WebSocket, return its stdout."""
    base = api_url(instance_url)
    headers = {"Authorization": f"token {token}"}
    kernel = httpx.post(base + "api/kernels", headers=headers, json={"name": "python3"}, timeout=30)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    socket_url = base.replace("http://", "ws://", 1) + f"api/kernels/{kernel_id}/channels"
    message_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": message_id,
            "username": "test",
            "session": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": "",
        },
        "parent_header": {},
        "metadata": {},
        "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
        "channel": "shell",
        "buffers": [],
    }
    output: list[str] = []
    deadline = time.monotonic() + timeout
    with connect(socket_url, additional_headers=headers, open_timeout=30) as socket:
        socket.send(json.dumps(request))
        while time.monotonic() < deadline:
            message = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("parent_header", {}).get("msg_id") != message_id:
                continue
            kind = message["header"]["msg_type"]
            if kind == "stream":
                output.append(message["content"]["text"])
            elif kind == "error":
                raise AssertionError("\n".join(message["content"]["traceback"]))
            elif kind == "status" and message["content"]["execution_state"] == "idle":
                return "".join(output)
    raise AssertionError(f"no result within {timeout} s; so far {output!r}")


# --- processes -------------------------------------------------------------------------------------------


def instance_processes(data_dir: Path, notebook_id: str) -> list[psutil.Process]:
    """Every live process of an instance: its runner, JupyterLab and kernels name its folder."""
    marker = str(data_dir / "notebooks" / notebook_id)
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in process.info["cmdline"] or []):
                found.append(process)
        except psutil.Error:
            continue
    return found


def kill_leftovers(data_dir: Path) -> int:
    """The last resort of a fixture: SIGKILL any process still naming the data directory's notebooks."""
    marker = str(data_dir / "notebooks") + os.sep
    killed = 0
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or []):
                process.send_signal(signal.SIGKILL)
                killed += 1
        except psutil.Error:
            continue
    return killed


def stop_and_delete_all(client: Any) -> None:
    """Leave the server with no instance: stop the running ones, then delete them all."""
    listed = client.list_all_notebooks(ListAllNotebooksRequest(limit=1000, feature="ALL")).data or []
    for notebook in listed:
        if notebook.status == "RUNNING":
            client.stop_notebook(StopNotebookRequest(id=notebook.id))
    for notebook in listed:
        try:
            current = wait_status(client, notebook.id, "STOPPED", "ERROR", "CREATE_FAILED", "START_FAILED")
            if current.status != "DELETING":
                client.delete_notebook(DeleteNotebookRequest(id=notebook.id))
            wait_gone(client, notebook.id)
        except (AssertionError, ClientRequestException):
            continue
