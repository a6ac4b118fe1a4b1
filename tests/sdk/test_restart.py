"""``kill -9`` at any moment: after a restart every acknowledged write is there, nothing half-made."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

from huaweicloudsdkmodelarts.v1 import (
    CreateWorkspaceReq,
    CreateWorkspaceReqGrants,
    CreateWorkspaceRequest,
    ListWorkspaceRequest,
    ShowWorkspaceRequest,
)

from tests.support.databases import fresh_database
from tests.support.server import LiveServer


def test_acknowledged_creates_survive_kill_9(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        live = LiveServer(tmp_path / "data", url)
        live.start()
        member = live.create_user("member")
        client = live.client()
        acknowledged: list[Any] = []
        stop = threading.Event()

        def create_until_the_server_dies() -> None:
            i = 0
            while not stop.is_set():
                grants = [CreateWorkspaceReqGrants(user_id=member["user_id"])]
                body = CreateWorkspaceReq(name=f"crash-{i:04d}", auth_type="INTERNAL", grants=grants)
                try:
                    acknowledged.append(client.create_workspace(CreateWorkspaceRequest(body=body)))
                except Exception:
                    return  # the server is gone
                i += 1

        writer = threading.Thread(target=create_until_the_server_dies)
        writer.start()
        deadline = time.monotonic() + 20
        while len(acknowledged) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        live.stop(signal.SIGKILL)
        stop.set()
        writer.join(timeout=30)
        assert len(acknowledged) >= 10

        live.start()
        try:
            client = live.client()
            listed = client.list_workspace(ListWorkspaceRequest(name="crash-"))
            names = {w.name for w in listed.workspaces}
            assert {w.name for w in acknowledged} <= names
            assert len(names) - len(acknowledged) <= 1  # at most the one in flight, and whole
            for workspace in listed.workspaces:
                shown = client.show_workspace(ShowWorkspaceRequest(workspace_id=workspace.id))
                assert [g.user_id for g in shown.grants] == [member["user_id"]]
        finally:
            live.stop()
