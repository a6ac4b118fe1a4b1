"""The platform's cost of starting a notebook: create to RUNNING and answering through the proxy, against
starting the same JupyterLab directly until it answers.

What is measured
----------------
Platform: on the real server (``openarts serve``), the time from the SDK's ``create_notebook`` call to
the instance shown ``RUNNING`` (polled every 20 ms) and its JupyterLab answering an authenticated
``api/status`` through the instance's ``url`` on the OpenArts port (polled every 20 ms).

Direct: the same JupyterLab program (the argv and environment the platform uses, from
``openarts.notebooks.jupyter.server_command``) started with ``subprocess.Popen`` and polled on its own
port every 20 ms until ``api/status`` answers.

Rounds alternate platform and direct (the machine's speed drifts); the figure of merit is the ratio of
the medians of ``--rounds`` (default 5) rounds. Target: <= 1.3.

Usage: ``python bench/notebook_start.py [--rounds 5]``
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil
from huaweicloudsdkmodelarts.v1 import (
    CreateNotebookRequest,
    DeleteNotebookRequest,
    NotebookCreateRequest,
    ShowNotebookRequest,
    StopNotebookRequest,
    VolumeMountRequest,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from job_overhead import BenchError, Server, launch_server, machine_line, run, sdk_client, wait_until_healthy

from openarts.notebooks import jupyter

TARGET_RATIO = 1.3
POLL_S = 0.02
TIMEOUT_S = 120.0
IMAGE_ID = "e1a07296-22a8-4f05-8bc8-e936c8e54090"  # the seed's built-in image: the server's own Python


def _show(client: Any, notebook_id: str) -> Any:
    return client.show_notebook(ShowNotebookRequest(id=notebook_id))


def _wait_status(client: Any, notebook_id: str, wanted: str) -> Any:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        notebook = _show(client, notebook_id)
        if notebook.status == wanted:
            return notebook
        if notebook.status.endswith("FAILED") or notebook.status == "ERROR":
            raise BenchError(f"notebook {notebook_id} is {notebook.status}: {notebook.fail_reason}")
        time.sleep(POLL_S)
    raise BenchError(f"notebook {notebook_id} did not become {wanted} within {TIMEOUT_S:g} s")


def _wait_answering(url: str, token: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    with httpx.Client(timeout=5) as http:
        while time.monotonic() < deadline:
            try:
                if http.get(url, headers={"Authorization": f"token {token}"}).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(POLL_S)
    raise BenchError(f"{url} did not answer within {TIMEOUT_S:g} s")


def platform_start(client: Any) -> float:
    """Seconds from create to answering through the proxy; the instance is then stopped and deleted."""
    body = NotebookCreateRequest(
        name=f"bench-{uuid.uuid4().hex[:8]}",
        flavor="modelarts.vm.cpu.2u",
        image_id=IMAGE_ID,
        volume=VolumeMountRequest(category="evs", ownership="managed", capacity=5),
    )
    started = time.monotonic()
    notebook_id = client.create_notebook(CreateNotebookRequest(body=body)).id
    running = _wait_status(client, notebook_id, "RUNNING")
    _wait_answering(running.url.rsplit("/lab", 1)[0] + "/api/status", running.token)
    elapsed = time.monotonic() - started
    client.stop_notebook(StopNotebookRequest(id=notebook_id))
    _wait_status(client, notebook_id, "STOPPED")
    client.delete_notebook(DeleteNotebookRequest(id=notebook_id))
    return elapsed


def direct_start(work_dir: Path) -> float:
    """Seconds from Popen to ``api/status`` answering on JupyterLab's own port; then it is stopped."""
    instance_id = uuid.uuid4().hex
    root = work_dir / "direct" / instance_id
    (root / "work").mkdir(parents=True)
    port, token = jupyter.free_port(), jupyter.new_token()
    argv, env = jupyter.server_command(
        sys.executable,
        instance_id=instance_id,
        port=port,
        token=token,
        work_dir=root / "work",
        state_dir=root / "state",
    )
    started = time.monotonic()
    with open(root / "jupyter.log", "wb") as log:
        process = subprocess.Popen(
            argv, env={"PATH": os.environ.get("PATH", ""), **env}, stdout=log, stderr=log, start_new_session=True
        )
    try:
        _wait_answering(f"http://127.0.0.1:{port}{jupyter.base_url(instance_id)}api/status", token)
        return time.monotonic() - started
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        jupyter.sweep(root / "state")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each (default 5)")
    return parser.parse_args(argv)


def benchmark(args: argparse.Namespace, work_dir: Path, servers: list[Server]) -> None:
    server = launch_server(work_dir, servers)
    wait_until_healthy(server)
    client = sdk_client(server)
    print(machine_line())
    print(f"{args.rounds} rounds: create -> RUNNING and answering through the proxy, and JupyterLab started directly")
    platform: list[float] = []
    direct: list[float] = []
    try:
        for _ in range(args.rounds):
            platform.append(platform_start(client))
            direct.append(direct_start(work_dir))
    finally:
        _kill_leftovers(server.data_dir)
    print(f"\n{'':24}{'median s':>10}{'min s':>8}{'max s':>8}")
    for label, values in (("through OpenArts", platform), ("JupyterLab directly", direct)):
        print(f"  {label:22}{statistics.median(values):10.2f}{min(values):8.2f}{max(values):8.2f}")
    ratio = statistics.median(platform) / statistics.median(direct)
    print(f"\n{machine_line()} (at the end)")
    print(f"notebook start: ratio {ratio:.2f} (target <= {TARGET_RATIO})")


def _kill_leftovers(data_dir: Path) -> None:
    """No Jupyter server or kernel of the benchmark's may outlive it."""
    marker = str(data_dir / "notebooks")
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in process.info["cmdline"] or []):
                process.kill()
        except psutil.Error:
            continue


def main(argv: list[str] | None = None) -> int:
    return run(benchmark, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
