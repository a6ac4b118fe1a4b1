"""The Jupyter server of a notebook instance, for real: started from ``server_command``, probed, swept.

No database and no OpenArts server: these tests drive ``openarts.notebooks.jupyter`` directly against
JupyterLab processes started the way the notebooks controller starts them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest
from websockets.sync.client import connect

from openarts.notebooks import jupyter

pytestmark = pytest.mark.timeout(120)

START_TIMEOUT_S = 60.0


class RunningJupyter:
    """One instance's JupyterLab in a subprocess (its own session, as the executor starts it)."""

    def __init__(self, root: Path, instance_id: str) -> None:
        self.instance_id = instance_id
        self.token = jupyter.new_token()
        self.port = jupyter.free_port()
        self.work_dir = root / "work"
        self.state_dir = root / "state"
        self.log_path = root / "jupyter.log"
        self.work_dir.mkdir(parents=True, exist_ok=True)
        argv, env = jupyter.server_command(
            sys.executable,
            instance_id=instance_id,
            port=self.port,
            token=self.token,
            work_dir=self.work_dir,
            state_dir=self.state_dir,
        )
        self.argv = argv
        # What the executor adds: a minimal base, not this process's environment.
        full_env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8", **env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=self.state_dir,
                env=full_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = time.monotonic()
        answering = jupyter.wait_answering(
            self.port, instance_id, self.token, START_TIMEOUT_S, alive=lambda: self.process.poll() is None
        )
        self.start_seconds = time.monotonic() - started
        if not answering:
            self.stop()
            raise RuntimeError(f"jupyter did not answer:\n{self.log()}")

    @property
    def base(self) -> str:
        return jupyter.base_url(self.instance_id)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the server's process group, as a crash or ``Executor.kill`` would."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """The documented stop: SIGTERM the group, give Jupyter time to shut kernels down, then sweep."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(jupyter.STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.kill()
        jupyter.sweep(self.state_dir)


def start_jupyter(root: Path, instance_id: str | None = None) -> RunningJupyter:
    return RunningJupyter(root, instance_id or str(uuid.uuid4()))


# --- talking to Jupyter (shared with test_proxy) ----------------------------------------------------------


def request(
    port: int, method: str, path: str, *, headers: dict[str, str] | None = None, body: Any = None
) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        connection.request(method, path, body=payload, headers=headers or {})
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw) if raw else None
    except ValueError:
        return response.status, raw.decode(errors="replace")


def start_kernel(port: int, base: str, token: str) -> str:
    status, kernel = request(port, "POST", base + "api/kernels", headers={"Authorization": f"token {token}"}, body={})
    assert status == 201, kernel
    kernel_id: str = kernel["id"]
    return kernel_id


def execute_request(code: str, session: str) -> dict[str, Any]:
    """A Jupyter messaging protocol v5 ``execute_request`` for the shell channel (legacy JSON framing)."""
    return {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "username": "test",
            "session": session,
            "msg_type": "execute_request",
            "version": "5.3",
            "date": datetime.now(UTC).isoformat(),
        },
        "parent_header": {},
        "metadata": {},
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
            "stop_on_error": True,
        },
        "channel": "shell",
        "buffers": [],
    }


def run_code(
    ws_url: str,
    code: str,
    *,
    headers: dict[str, str] | None = None,
    origin: str | None = None,
    timeout_s: float = 60.0,
) -> str:
    """Execute ``code`` over a kernel's ``channels`` WebSocket; what it printed on stdout."""
    session = uuid.uuid4().hex
    separator = "&" if "?" in ws_url else "?"
    with connect(
        f"{ws_url}{separator}session_id={session}",
        additional_headers=headers or {},
        origin=origin,  # type: ignore[arg-type]  # websockets' Origin is a NewType of str
        proxy=None,
        open_timeout=30,
        max_size=None,
    ) as socket:
        message = execute_request(code, session)
        socket.send(json.dumps(message))
        msg_id = message["header"]["msg_id"]
        out: list[str] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            reply = json.loads(socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if reply.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = reply["header"]["msg_type"]
            if reply.get("channel") == "iopub" and kind == "stream" and reply["content"]["name"] == "stdout":
                out.append(reply["content"]["text"])
            elif reply.get("channel") == "iopub" and kind == "error":
                raise AssertionError("\n".join(reply["content"]["traceback"]))
            elif reply.get("channel") == "iopub" and kind == "status" and reply["content"]["execution_state"] == "idle":
                return "".join(out)
        raise AssertionError(f"no idle status within {timeout_s}s; got {''.join(out)!r}")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# --- fixtures -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningJupyter]:
    running = start_jupyter(tmp_path_factory.mktemp("jupyter-runtime"))
    try:
        yield running
    finally:
        running.stop()
        assert jupyter.instance_processes(running.state_dir) == []


# --- the command ----------------------------------------------------------------------------------------


def test_server_command_keeps_the_token_off_the_command_line(tmp_path: Path) -> None:
    argv, env = jupyter.server_command(
        "/usr/bin/python3",
        instance_id="0b6f1c2e-1111-4c7e-9d2a-aa00bb11cc22",
        port=40123,
        token="secret-token-value",
        work_dir=tmp_path / "work",
        state_dir=tmp_path / "state",
    )
    assert isinstance(argv, list) and all(isinstance(arg, str) for arg in argv)
    assert argv[0] == "/usr/bin/python3"
    assert not any("secret-token-value" in arg for arg in argv)
    assert env["JUPYTER_TOKEN"] == "secret-token-value"
    assert "--ServerApp.port=40123" in argv and "--ServerApp.port_retries=0" in argv
    assert "--ServerApp.ip=127.0.0.1" in argv
    assert "--ServerApp.base_url=/authoring/0b6f1c2e-1111-4c7e-9d2a-aa00bb11cc22/" in argv
    assert f"--ServerApp.root_dir={tmp_path / 'work'}" in argv
    assert ("--ServerApp.allow_root=True" in argv) == (os.geteuid() == 0)
    state = tmp_path / "state"
    for name, sub in [
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("IPYTHONDIR", "ipython"),
        ("HOME", "home"),
    ]:
        assert env[name] == str(state / sub)
        assert stat.S_IMODE((state / sub).stat().st_mode) == 0o700
    # Two instances never share state.
    _, other = jupyter.server_command(
        "/usr/bin/python3",
        instance_id="other",
        port=40124,
        token="t2",
        work_dir=tmp_path / "work2",
        state_dir=tmp_path / "state2",
    )
    assert other["JUPYTER_RUNTIME_DIR"] != env["JUPYTER_RUNTIME_DIR"]


@pytest.mark.parametrize("instance_id", ["", "../x", "a b", "a/b", "x" * 200, "-rf"])
def test_server_command_refuses_odd_instance_ids(tmp_path: Path, instance_id: str) -> None:
    with pytest.raises(ValueError):
        jupyter.server_command(
            "python", instance_id=instance_id, port=1, token="t", work_dir=tmp_path, state_dir=tmp_path
        )


def test_lab_url() -> None:
    assert jupyter.lab_url("http://host:8000/", "abc") == "http://host:8000/authoring/abc/lab"


# --- a live server --------------------------------------------------------------------------------------


def test_probe_needs_the_right_token(server: RunningJupyter) -> None:
    assert jupyter.probe(server.port, server.instance_id, server.token)
    assert not jupyter.probe(server.port, server.instance_id, "wrong")
    assert not jupyter.probe(server.port, "another-instance", server.token)  # its base URL only
    assert not jupyter.probe(jupyter.free_port(), server.instance_id, server.token, timeout_s=0.5)


def test_activity_reports_kernels(server: RunningJupyter) -> None:
    before = jupyter.activity(server.port, server.instance_id, server.token)
    assert before is not None and before.kernels == 0
    assert before.last_activity.tzinfo is not None
    kernel_id = start_kernel(server.port, server.base, server.token)
    try:
        after = jupyter.activity(server.port, server.instance_id, server.token)
        assert after is not None
        assert after.kernels == 1
        assert after.last_activity >= before.last_activity
        # Polling status is no activity: an IDLE lease is not kept alive by the controller's own probes.
        again = jupyter.activity(server.port, server.instance_id, server.token)
        assert again is not None and again.last_activity == after.last_activity
    finally:
        status, _ = request(
            server.port,
            "DELETE",
            f"{server.base}api/kernels/{kernel_id}",
            headers={"Authorization": f"token {server.token}"},
        )
        assert status == 204
    assert jupyter.activity(server.port, server.instance_id, "wrong") is None


def test_instance_processes_finds_the_server(server: RunningJupyter) -> None:
    pids = {process.pid for process in jupyter.instance_processes(server.state_dir)}
    assert server.process.pid in pids
    # It moved into the work dir (terminals opened from the top folder start there), started elsewhere.
    assert Path(psutil.Process(server.process.pid).cwd()) == server.work_dir
    assert not jupyter.instance_processes(server.state_dir.parent / "no-such-state")


def test_sweep_kills_what_a_sigkilled_server_leaves_and_nothing_else(tmp_path: Path) -> None:
    running = start_jupyter(tmp_path / "a")
    # A process of another instance whose state path extends this one's ("a-2" after "a"): never touched.
    neighbour_runtime = jupyter.state_dirs(tmp_path / "a-2").runtime
    neighbour = subprocess.Popen(
        ["sleep", "300"],
        env={**os.environ, "JUPYTER_RUNTIME_DIR": str(neighbour_runtime)},
        start_new_session=True,
    )
    try:
        kernel_id = start_kernel(running.port, running.base, running.token)
        ws_url = f"ws://127.0.0.1:{running.port}{running.base}api/kernels/{kernel_id}/channels"
        # The kernel starts a background process in a session of its own, as a user's `!nohup ... &` would.
        printed = run_code(
            ws_url,
            "import os, subprocess\n"
            "child = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
            "print(os.getpid(), child.pid)",
            headers={"Authorization": f"token {running.token}"},
        )
        kernel_pid, child_pid = (int(word) for word in printed.split())
        assert alive(kernel_pid) and alive(child_pid)

        running.kill()
        assert not alive(running.process.pid)
        assert alive(child_pid)  # the group kill does not reach other sessions
        killed = jupyter.sweep(running.state_dir)
        assert killed >= 1  # the background child, and the kernel unless its parent poller was quicker
        assert not alive(kernel_pid)
        assert not alive(child_pid)
        assert alive(neighbour.pid)
        assert jupyter.instance_processes(running.state_dir) == []
        assert jupyter.sweep(running.state_dir) == 0
    finally:
        running.stop()
        neighbour.kill()
        neighbour.wait()


def test_sigterm_shuts_kernels_down(tmp_path: Path) -> None:
    running = start_jupyter(tmp_path)
    try:
        kernel_id = start_kernel(running.port, running.base, running.token)
        ws_url = f"ws://127.0.0.1:{running.port}{running.base}api/kernels/{kernel_id}/channels"
        kernel_pid = int(
            run_code(ws_url, "import os; print(os.getpid())", headers={"Authorization": f"token {running.token}"})
        )
        os.killpg(running.process.pid, signal.SIGTERM)
        assert running.process.wait(jupyter.STOP_GRACE_S) == 0
        # Jupyter shut the kernel down itself: nothing left for the sweep.
        with contextlib.suppress(psutil.NoSuchProcess):
            psutil.Process(kernel_pid).wait(timeout=2)
        assert not alive(kernel_pid)
        assert jupyter.sweep(running.state_dir) == 0
    finally:
        running.stop()
