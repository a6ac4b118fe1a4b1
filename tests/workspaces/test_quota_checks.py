"""The quota check later families call before they create anything, and delete's resource guard."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.orm import Session

from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal, principal_for_access_key
from openarts.workspaces import quotas, service
from tests.conftest import InProcess

RESOURCE = "notebook.num"


@pytest.fixture
def counted() -> Iterator[dict[str, int]]:
    """A usage counter standing in for a family that is not built yet; the test sets the count."""
    usage = {"n": 0}

    def count(_session: Session, _project_id: str, _workspace_id: str) -> int:
        return usage["n"]

    quotas.register_usage(RESOURCE, count)
    service.resource_holders["notebooks"] = count
    try:
        yield usage
    finally:
        quotas._usage.pop(RESOURCE, None)
        service.resource_holders.pop("notebooks", None)


def _admin(app: InProcess) -> Principal:
    found = principal_for_access_key(app.db, app.admin["access_key"])
    assert found is not None
    return found[0]


def test_check_quota_counts_real_usage(inprocess: InProcess, counted: dict[str, int]) -> None:
    admin = _admin(inprocess)
    pid = admin.project_id
    with inprocess.db.write() as session:
        quotas.check_quota(session, admin, "0", RESOURCE)  # unlimited
    response = inprocess.signed(
        "PUT", f"/v1/{pid}/workspaces/0/quotas", body={"quotas": [{"resource": RESOURCE, "quota": 2}]}
    )
    assert response.status_code == 200
    counted["n"] = 1
    with inprocess.db.write() as session:
        quotas.check_quota(session, admin, "0", RESOURCE)
    counted["n"] = 2
    with inprocess.db.write() as session, pytest.raises(ApiError) as caught:
        quotas.check_quota(session, admin, "0", RESOURCE)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.0118")
    shown = inprocess.signed("GET", f"/v1/{pid}/workspaces/0/quotas").json()
    entry = next(q for q in shown["quotas"] if q["resource"] == RESOURCE)
    assert (entry["quota"], entry["used_quota"]) == (2, 2)


def test_check_quota_applies_access_rules(inprocess: InProcess) -> None:
    other = inprocess.create_user("dave")
    pid = other["project_id"]
    created = inprocess.signed("POST", f"/v1/{pid}/workspaces", body={"name": "private-ws", "auth_type": "PRIVATE"})
    assert created.status_code == 200
    found = principal_for_access_key(inprocess.db, other["access_key"])
    assert found is not None
    with inprocess.db.write() as session, pytest.raises(ApiError) as caught:
        quotas.check_quota(session, found[0], created.json()["id"], RESOURCE)
    assert caught.value.status == 403


def test_workspace_holding_resources_cannot_be_deleted(inprocess: InProcess, counted: dict[str, int]) -> None:
    pid = inprocess.admin["project_id"]
    workspace_id = inprocess.signed("POST", f"/v1/{pid}/workspaces", body={"name": "busy-ws"}).json()["id"]
    counted["n"] = 3
    response = inprocess.signed("DELETE", f"/v1/{pid}/workspaces/{workspace_id}")
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.7004"
    assert "3 notebooks" in response.json()["error_msg"]
    counted["n"] = 0
    assert inprocess.signed("DELETE", f"/v1/{pid}/workspaces/{workspace_id}").status_code == 200
