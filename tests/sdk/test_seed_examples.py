"""The two workspace examples of the ModelArts manual excerpt (shared/seed), as written."""

from __future__ import annotations

from typing import Any

from huaweicloudsdkmodelarts.v1 import (
    ListWorkspaceRequest,
    UpdateWorkspaceQuotasReq,
    UpdateWorkspaceQuotasReqQuotas,
    UpdateWorkspaceQuotasRequest,
)

from tests.support.server import LiveServer

SEED_QUOTA_ENTRY = {
    "max_quota": 60000,
    "resource": "exemlProject.gpu_duration",
    "quota": 20,
    "min_quota": -1,
    "name_cn": "自动学习(图像分类、物体检测、声音分类)训练时长",
    "unit_cn": "分钟",
    "name_en": "ExeML training duration (image classification, object detection, and sound classification)",
    "unit_en": "minute",
}


def test_list_workspaces_example(admin_client: Any) -> None:
    """GET /v1/{project_id}/workspaces: the default workspace, with every field of the example."""
    response = admin_client.list_workspace(ListWorkspaceRequest())
    assert response.total_count >= 1
    assert response.count == len(response.workspaces)
    default = next(w for w in response.workspaces if w.id == "0")
    assert default.name == "default"
    assert default.auth_type == "PUBLIC"
    assert default.status == "NORMAL"
    assert default.status_info == ""
    assert default.description == ""
    assert default.enterprise_project_name == "default"
    assert isinstance(default.create_time, int) and isinstance(default.update_time, int)
    assert default.owner


def test_update_quota_example(server: LiveServer, admin_client: Any) -> None:
    """PUT .../workspaces/{id}/quotas with the example body answers the example's entry."""
    request = UpdateWorkspaceQuotasRequest(
        workspace_id="0",
        body=UpdateWorkspaceQuotasReq(
            quotas=[UpdateWorkspaceQuotasReqQuotas(resource="exemlProject.gpu_duration", quota=20)]
        ),
    )
    response = admin_client.update_workspace_quotas(request)
    assert len(response.quotas) == 1
    entry = response.quotas[0].to_dict()
    assert isinstance(entry.pop("update_time"), int)
    assert entry == SEED_QUOTA_ENTRY
