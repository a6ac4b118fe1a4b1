"""Workspace quotas through the SDK: defaults, updates, limits and all-or-nothing changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    ShowWorkspaceQuotasRequest,
    UpdateWorkspaceQuotasReq,
    UpdateWorkspaceQuotasReqQuotas,
    UpdateWorkspaceQuotasRequest,
)

from tests.support.server import LiveServer
from tests.support.signing import sign

METERED = {"trainJob.num", "trainJob.concurrent_num", "trainJob.duration", "notebook.num", "workflow.num"}


def _workspace(client: Any, unique: Callable[[str], str]) -> Any:
    return client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=unique("quota"))))


def _quotas(client: Any, workspace_id: str) -> dict[str, Any]:
    response = client.show_workspace_quotas(ShowWorkspaceQuotasRequest(workspace_id=workspace_id))
    return {q.resource: q for q in response.quotas}


def _update(client: Any, workspace_id: str, *changes: tuple[str, int]) -> Any:
    body = UpdateWorkspaceQuotasReq(quotas=[UpdateWorkspaceQuotasReqQuotas(resource=r, quota=q) for r, q in changes])
    return client.update_workspace_quotas(UpdateWorkspaceQuotasRequest(workspace_id=workspace_id, body=body))


def test_defaults_are_unlimited_since_creation(admin_client: Any, unique: Callable[[str], str]) -> None:
    workspace = _workspace(admin_client, unique)
    quotas = _quotas(admin_client, workspace.id)
    assert {"exemlProject.gpu_duration", *METERED} <= set(quotas)
    for entry in quotas.values():
        assert entry.quota == -1
        assert entry.used_quota is None  # unlimited: no usage reported
        assert entry.update_time == workspace.create_time
        assert entry.min_quota == -1 and entry.max_quota > 0
        assert entry.name_en and entry.name_cn and entry.unit_en and entry.unit_cn


def test_update_then_show(admin_client: Any, unique: Callable[[str], str]) -> None:
    workspace = _workspace(admin_client, unique)
    updated = _update(admin_client, workspace.id, ("notebook.num", 3), ("workflow.num", -1))
    assert [(q.resource, q.quota) for q in updated.quotas] == [("notebook.num", 3), ("workflow.num", -1)]
    assert all(q.update_time >= workspace.create_time for q in updated.quotas)
    quotas = _quotas(admin_client, workspace.id)
    assert quotas["notebook.num"].quota == 3
    assert quotas["notebook.num"].used_quota == 0
    assert quotas["workflow.num"].used_quota is None
    assert quotas["trainJob.num"].update_time == workspace.create_time


@pytest.mark.parametrize(
    "changes",
    [
        [("notebook.num", -2)],
        [("notebook.num", 0)],
        [("notebook.num", 1001)],  # over max_quota
        [("exemlProject.gpu_duration", 60001)],
        [("no.such.resource", 1)],
        [("notebook.num", 2), ("notebook.num", 3)],
        [("notebook.num", 5), ("workflow.num", -7)],  # one bad entry: nothing changes
    ],
)
def test_bad_updates_change_nothing(admin_client: Any, unique: Callable[[str], str], changes: Any) -> None:
    workspace = _workspace(admin_client, unique)
    with pytest.raises(ClientRequestException) as caught:
        _update(admin_client, workspace.id, *changes)
    assert (caught.value.status_code, caught.value.error_code) == (400, "ModelArts.0101")
    assert changes[0][0] in caught.value.error_msg or changes[-1][0] in caught.value.error_msg
    assert all(q.quota == -1 for q in _quotas(admin_client, workspace.id).values())


@pytest.mark.parametrize(
    "body",
    [
        {"quotas": [{"resource": "notebook.num", "quota": "5"}]},  # mistyped
        {"quotas": [{"resource": "notebook.num", "quota": 1.5}]},
        {"quotas": [{"resource": "notebook.num", "quota": True}]},
        {"quotas": [{"resource": "notebook.num"}]},  # missing
        {"quotas": []},
        {},
    ],
)
def test_malformed_bodies_are_400(server: LiveServer, body: dict[str, Any]) -> None:
    creds = server.admin
    path = f"/v1/{creds['project_id']}/workspaces/0/quotas"
    raw = json.dumps(body).encode()
    headers = sign(
        "PUT",
        server.url + path,
        ak=creds["access_key"],
        sk=creds["secret_key"],
        project_id=creds["project_id"],
        body=raw,
    )
    response = httpx.put(server.url + path, content=raw, headers=headers, timeout=10)
    assert response.status_code == 400
    payload = response.json()
    assert payload["error_code"] == "ModelArts.0101"
    assert "quota" in payload["error_msg"]
