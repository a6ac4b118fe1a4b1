"""``kill -9`` of the server while instances run: after the restart an instance whose JupyterLab is still
alive and answering is re-adopted (same process, same URL, kernels work), one whose server died meanwhile
is ERROR with the reason, and no Jupyter process is left behind at the end."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from huaweicloudsdkmodelarts.v1 import DeleteNotebookRequest, NotebookCustomSpec, StopNotebookRequest

from tests.notebooks.notebook_support import (
    create,
    instance_processes,
    kill_leftovers,
    run_code,
    show,
    wait_gone,
    wait_status,
)
from tests.support.databases import fresh_database
from tests.support.server import LiveServer

pytestmark = pytest.mark.timeout(400)

SMALL = NotebookCustomSpec(cpu=0.5, memory=1024, arch="X86_64", category="CPU")


@pytest.fixture
def own_server(backend: str, tmp_path: Path) -> Iterator[LiveServer]:
    with fresh_database(backend, tmp_path) as url:
        live = LiveServer(tmp_path / "data", url, env={"OPENARTS_COMPUTE_CPUS": "4"})
        live.start()
        try:
            yield live
        finally:
            live.stop()
            kill_leftovers(live.data_dir)


def test_running_instances_are_readopted_or_failed_with_the_reason(own_server: LiveServer) -> None:
    client = own_server.client()
    survivor = create(client, "survivor", flavor=None, custom_spec=SMALL)
    casualty = create(client, "casualty", flavor=None, custom_spec=SMALL)
    survivor = wait_status(client, survivor.id, "RUNNING")
    casualty = wait_status(client, casualty.id, "RUNNING")
    jupyter_pid = {p.pid for p in instance_processes(own_server.data_dir, survivor.id)}

    own_server.stop(signal.SIGKILL)
    for process in instance_processes(own_server.data_dir, casualty.id):
        process.kill()  # the casualty's JupyterLab dies while nobody watches
    psutil.wait_procs(instance_processes(own_server.data_dir, casualty.id), timeout=10)
    own_server.start()

    client = own_server.client()
    readopted = show(client, survivor.id)
    assert readopted.status == "RUNNING" and readopted.url == survivor.url
    assert {p.pid for p in instance_processes(own_server.data_dir, survivor.id)} >= jupyter_pid
    assert "ok" in run_code(readopted.url, readopted.token, "print('ok')")
    failed = wait_status(client, casualty.id, "ERROR", timeout=30)
    assert "restarted" in failed.fail_reason

    client.stop_notebook(StopNotebookRequest(id=survivor.id))
    wait_status(client, survivor.id, "STOPPED")
    for notebook_id in (survivor.id, casualty.id):
        client.delete_notebook(DeleteNotebookRequest(id=notebook_id))
        wait_gone(client, notebook_id)
        assert instance_processes(own_server.data_dir, notebook_id) == []
