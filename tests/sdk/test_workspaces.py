"""Every workspace endpoint through the official SDK against a live server: success and bad input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    AuthRequests,
    CreateWorkspaceReq,
    CreateWorkspaceReqGrants,
    CreateWorkspaceRequest,
    DeleteWorkspaceRequest,
    ListUsersRequest,
    ListWorkspaceRequest,
    ShowWorkspaceQuotasRequest,
    ShowWorkspaceRequest,
    UpdateWorkspaceQuotasReq,
    UpdateWorkspaceQuotasReqQuotas,
    UpdateWorkspaceQuotasRequest,
    UpdateWorkspaceReq,
    UpdateWorkspaceRequest,
    ValidateAuthorizationRequest,
    ValidateAuthorizationRequestBody,
    ViewWorkspaceResponseGrants,
)

Unique = Callable[[str], str]


def _create(client: Any, name: str, **fields: Any) -> Any:
    return client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=name, **fields)))


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _names(response: Any) -> list[str]:
    return [w.name for w in response.workspaces]


# --- create, show, update, delete --------------------------------------------------------------


def test_workspace_lifecycle(admin_client: Any, unique: Unique) -> None:
    name = unique("lifecycle")
    created = _create(admin_client, name, description="first", auth_type="internal")
    assert len(created.id) == 32 and all(c in "0123456789abcdef" for c in created.id)
    assert created.auth_type == "INTERNAL"
    assert created.owner == "admin"
    assert created.status == "NORMAL" and created.status_info == ""
    assert created.create_time == created.update_time
    assert created.grants == []

    shown = admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=created.id))
    assert (shown.name, shown.description, shown.id) == (name, "first", created.id)

    renamed = unique("renamed")
    body = UpdateWorkspaceReq(name=renamed, description="second", auth_type="PUBLIC")
    updated = admin_client.update_workspace(UpdateWorkspaceRequest(workspace_id=created.id, body=body))
    assert updated.workspace_id == created.id
    shown = admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=created.id))
    assert (shown.name, shown.description, shown.auth_type) == (renamed, "second", "PUBLIC")
    assert shown.update_time >= shown.create_time

    deleted = admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=created.id))
    assert deleted.workspace_id == created.id
    error = _error(lambda: admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=created.id)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")


def test_grants_by_id_and_name(admin_client: Any, member: dict[str, Any], unique: Unique) -> None:
    grants = [CreateWorkspaceReqGrants(user_name=member["user_name"])]
    created = _create(admin_client, unique("granted"), auth_type="INTERNAL", grants=grants)
    assert [(g.user_id, g.user_name) for g in created.grants] == [(member["user_id"], member["user_name"])]
    body = UpdateWorkspaceReq(grants=[ViewWorkspaceResponseGrants(user_id=member["user_id"], user_type="IAM")])
    admin_client.update_workspace(UpdateWorkspaceRequest(workspace_id=created.id, body=body))
    shown = admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=created.id))
    assert [(g.user_id, g.user_name, g.user_type) for g in shown.grants] == [
        (member["user_id"], member["user_name"], "IAM")
    ]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "abc"}, "ModelArts.0101"),  # too short
        ({"name": "x" * 65}, "ModelArts.0101"),  # too long
        ({"name": "bad name!"}, "ModelArts.0101"),
        ({"name": "default"}, "ModelArts.0101"),  # reserved
        ({"name": "DEFAULT"}, "ModelArts.0101"),
        ({"name": "okname", "auth_type": "SECRET"}, "ModelArts.0101"),
        ({"name": "okname", "description": "d" * 257}, "ModelArts.0101"),
        ({"name": "okname", "grants": [CreateWorkspaceReqGrants(user_name="no-such-user")]}, "ModelArts.0101"),
        ({"name": "okname", "grants": [CreateWorkspaceReqGrants(user_type="IAM")]}, "ModelArts.0101"),
    ],
)
def test_create_refuses_bad_input(admin_client: Any, fields: dict[str, Any], code: str) -> None:
    before = admin_client.list_workspace(ListWorkspaceRequest()).total_count
    error = _error(lambda: admin_client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(**fields))))
    assert (error.status_code, error.error_code) == (400, code)
    assert error.error_msg
    assert admin_client.list_workspace(ListWorkspaceRequest()).total_count == before  # nothing half-made


def test_duplicate_names_are_refused(admin_client: Any, unique: Unique) -> None:
    first = _create(admin_client, unique("dup"))
    error = _error(lambda: _create(admin_client, first.name))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7010")
    other = _create(admin_client, unique("dup2"))
    body = UpdateWorkspaceReq(name=first.name)
    error = _error(lambda: admin_client.update_workspace(UpdateWorkspaceRequest(workspace_id=other.id, body=body)))
    assert error.error_code == "ModelArts.7010"
    assert admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=other.id)).name == other.name


def test_unknown_workspace_everywhere(admin_client: Any) -> None:
    missing = "f" * 32
    calls: list[Callable[[], Any]] = [
        lambda: admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=missing)),
        lambda: admin_client.update_workspace(
            UpdateWorkspaceRequest(workspace_id=missing, body=UpdateWorkspaceReq(description="x"))
        ),
        lambda: admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=missing)),
        lambda: admin_client.show_workspace_quotas(ShowWorkspaceQuotasRequest(workspace_id=missing)),
        lambda: admin_client.validate_authorization(
            ValidateAuthorizationRequest(
                workspace_id=missing,
                body=ValidateAuthorizationRequestBody(requests=[AuthRequests(action="modelarts:trainJob:create")]),
            )
        ),
    ]
    for call in calls:
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.7005")


def test_default_workspace_is_permanent(admin_client: Any) -> None:
    error = _error(lambda: admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id="0")))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7004")
    body = UpdateWorkspaceReq(name="renamed-default")
    error = _error(lambda: admin_client.update_workspace(UpdateWorkspaceRequest(workspace_id="0", body=body)))
    assert error.status_code == 400
    shown = admin_client.show_workspace(ShowWorkspaceRequest(workspace_id="0"))
    assert shown.name == "default"


# --- list -------------------------------------------------------------------------------------


def test_list_filters_sorts_and_pages(admin_client: Any, unique: Unique) -> None:
    tag = unique("lst")
    names = [f"{tag}-a", f"{tag}-c", f"{tag}-b"]
    for name in names:
        _create(admin_client, name, enterprise_project_id="ep-" + tag)

    everything = admin_client.list_workspace(ListWorkspaceRequest(name=tag))
    assert everything.total_count == 3 and everything.count == 3
    assert _names(everything) == sorted(names, reverse=True)  # default: by name, descending

    ascending = admin_client.list_workspace(ListWorkspaceRequest(name=tag, order="asc"))
    assert _names(ascending) == sorted(names)

    page = admin_client.list_workspace(ListWorkspaceRequest(name=tag, order="asc", offset=1, limit=1))
    assert (page.total_count, page.count, _names(page)) == (3, 1, [f"{tag}-b"])

    past_the_end = admin_client.list_workspace(ListWorkspaceRequest(name=tag, offset=10))
    assert (past_the_end.total_count, past_the_end.count, past_the_end.workspaces) == (3, 0, [])
    full_page = admin_client.list_workspace(ListWorkspaceRequest(name=tag, limit=3))
    assert (full_page.total_count, full_page.count) == (3, 3)

    by_time = admin_client.list_workspace(ListWorkspaceRequest(name=tag, sort_by="update_time", order="asc"))
    assert _names(by_time) == names  # creation order

    by_project = admin_client.list_workspace(ListWorkspaceRequest(enterprise_project_id="ep-" + tag))
    assert by_project.total_count == 3
    assert admin_client.list_workspace(ListWorkspaceRequest(name=tag + "-zzz")).total_count == 0


def test_list_name_is_a_literal_substring(admin_client: Any, unique: Unique) -> None:
    tag = unique("lit")
    _create(admin_client, f"{tag}_x")
    _create(admin_client, f"{tag}-x")
    assert _names(admin_client.list_workspace(ListWorkspaceRequest(name=f"{tag}_"))) == [f"{tag}_x"]


@pytest.mark.parametrize(
    "request_fields",
    [{"limit": 0}, {"limit": 1001}, {"offset": -1}, {"sort_by": "owner"}, {"order": "up"}, {"name": "n" * 65}],
)
def test_list_refuses_bad_queries(admin_client: Any, request_fields: dict[str, Any]) -> None:
    error = _error(lambda: admin_client.list_workspace(ListWorkspaceRequest(**request_fields)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.0101")
    assert next(iter(request_fields)) in error.error_msg


# --- access rules -----------------------------------------------------------------------------


def test_private_workspace_is_the_creators(
    admin_client: Any, member_client: Any, member: dict[str, Any], unique: Unique
) -> None:
    mine = _create(member_client, unique("members-private"), auth_type="PRIVATE")
    theirs = _create(admin_client, unique("admins-private"), auth_type="PRIVATE")

    # The creator and the main account may use it; another IAM user may not.
    assert member_client.show_workspace(ShowWorkspaceRequest(workspace_id=mine.id)).owner == member["user_name"]
    assert admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=mine.id)).id == mine.id
    denied: list[Callable[[], Any]] = [
        lambda: member_client.show_workspace(ShowWorkspaceRequest(workspace_id=theirs.id)),
        lambda: member_client.update_workspace(
            UpdateWorkspaceRequest(workspace_id=theirs.id, body=UpdateWorkspaceReq(description="mine now"))
        ),
        lambda: member_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=theirs.id)),
        lambda: member_client.show_workspace_quotas(ShowWorkspaceQuotasRequest(workspace_id=theirs.id)),
        lambda: member_client.update_workspace_quotas(
            UpdateWorkspaceQuotasRequest(
                workspace_id=theirs.id,
                body=UpdateWorkspaceQuotasReq(
                    quotas=[UpdateWorkspaceQuotasReqQuotas(resource="notebook.num", quota=1)]
                ),
            )
        ),
    ]
    for call in denied:
        error = _error(call)
        assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    assert admin_client.show_workspace(ShowWorkspaceRequest(workspace_id=theirs.id)).description == ""

    # Listed to everyone by default, hidden from those who may not use it with filter_accessible.
    tag = theirs.name
    assert _names(member_client.list_workspace(ListWorkspaceRequest(name=tag))) == [tag]
    hidden = member_client.list_workspace(ListWorkspaceRequest(name=tag, filter_accessible=True))
    assert (hidden.total_count, hidden.workspaces) == (0, [])
    assert _names(admin_client.list_workspace(ListWorkspaceRequest(name=mine.name, filter_accessible=True))) == [
        mine.name
    ]


def test_internal_workspace_admits_granted_users(
    server: Any, admin_client: Any, member: dict[str, Any], unique: Unique
) -> None:
    stranger = server.client(server.create_user("stranger"))
    grants = [CreateWorkspaceReqGrants(user_id=member["user_id"])]
    workspace = _create(admin_client, unique("internal"), auth_type="INTERNAL", grants=grants)
    member_client = server.client(member)

    assert member_client.show_workspace(ShowWorkspaceRequest(workspace_id=workspace.id)).id == workspace.id
    assert member_client.show_workspace_quotas(ShowWorkspaceQuotasRequest(workspace_id=workspace.id)).quotas
    # A grant lets a user work in the workspace, not manage it.
    error = _error(lambda: member_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace.id)))
    assert error.status_code == 403
    error = _error(lambda: stranger.show_workspace(ShowWorkspaceRequest(workspace_id=workspace.id)))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    listed = stranger.list_workspace(ListWorkspaceRequest(name=workspace.name, filter_accessible=True))
    assert listed.total_count == 0
    listed = member_client.list_workspace(ListWorkspaceRequest(name=workspace.name, filter_accessible=True))
    assert listed.total_count == 1


def test_validate_authorization(admin_client: Any, member_client: Any, unique: Unique) -> None:
    workspace = _create(admin_client, unique("authq"), auth_type="PRIVATE")
    requests = [
        AuthRequests(action_id="1", action="modelarts:trainJob:create", resource="job"),
        AuthRequests(action_id="2", action="modelarts:workspace:delete"),
    ]

    def ask(client: Any, workspace_id: str) -> list[tuple[str, str]]:
        body = ValidateAuthorizationRequestBody(requests=requests)
        response = client.validate_authorization(ValidateAuthorizationRequest(workspace_id=workspace_id, body=body))
        return [(r.action_id, r.verdict) for r in response.results]

    assert ask(admin_client, workspace.id) == [("1", "allow"), ("2", "allow")]
    assert ask(member_client, workspace.id) == [("1", "deny"), ("2", "deny")]
    assert ask(member_client, "0") == [("1", "allow"), ("2", "deny")]
    error = _error(
        lambda: admin_client.validate_authorization(
            ValidateAuthorizationRequest(workspace_id="0", body=ValidateAuthorizationRequestBody(requests=[]))
        )
    )
    assert error.status_code == 400


def test_list_users(admin_client: Any, member: dict[str, Any], outsider: dict[str, Any]) -> None:
    users = [u.user_name for u in admin_client.list_users(ListUsersRequest()).users]
    assert "admin" in users and member["user_name"] in users
    assert outsider["user_name"] not in users


def test_other_projects_are_out_of_reach(server: Any, admin_client: Any, outsider: dict[str, Any]) -> None:
    theirs = server.client(outsider)
    assert [w.id for w in theirs.list_workspace(ListWorkspaceRequest()).workspaces] == ["0"]
    created = _create(admin_client, "reach-" + outsider["user_id"][:8])
    error = _error(lambda: theirs.show_workspace(ShowWorkspaceRequest(workspace_id=created.id)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")
    # Signing with one's own key for someone else's project id.
    forged = server.client({**outsider, "project_id": server.admin["project_id"]})
    error = _error(lambda: forged.list_workspace(ListWorkspaceRequest()))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0210")
