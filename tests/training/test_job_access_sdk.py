"""Workspace access rules on training jobs, through the official SDK against a live server.

PUBLIC workspaces are for every user of the project; PRIVATE ones for their creator and the main account;
INTERNAL ones also for the users in their grants. A job in a workspace the caller may not use looks absent
(400 ModelArts.2775), like a job of another project; naming such a workspace outright is a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    BatchDeleteJobItem,
    BatchDeleteJobsReq,
    BatchDeleteTrainingJobRequest,
    ChangeTrainingJobDescriptionRequest,
    CountResourceInstancesReq,
    CountTrainingJobsByTagsRequest,
    CreateTmsTagsRequest,
    CreateTrainJobTagsRequest,
    CreateWorkspaceReq,
    CreateWorkspaceReqGrants,
    CreateWorkspaceRequest,
    DeleteTmsTagsRequest,
    DeleteTrainingJobRequest,
    DeleteTrainJobTagsRequest,
    Filter,
    JobActionType,
    JobSearches,
    JobUpdateRequestBody,
    ListTrainingJobEventsRequest,
    ListTrainingJobsByTagsRequest,
    ListTrainingJobsRequest,
    ListTrainingJobTagsRequest,
    ListTrainingJobTasksRequest,
    MutiValueTag,
    ResourceInstancesFilterReq,
    ShowTrainingJobDetailsRequest,
    ShowTrainingJobLogsFromAomRequest,
    ShowTrainingJobLogsPreviewRequest,
    ShowTrainingJobMetricsRequest,
    ShowTrainJobTagsRequest,
    StopTrainingJobRequest,
    TmsTag,
    ValidateTrainingJobNameRequest,
)

from tests.support.server import LiveServer
from tests.training.jobs_support import job, wait_for

Unique = Callable[[str], str]


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _workspace(client: Any, name: str, auth_type: str, grants: list[dict[str, Any]] | None = None) -> str:
    body = CreateWorkspaceReq(
        name=name,
        auth_type=auth_type,
        grants=[CreateWorkspaceReqGrants(user_id=user["user_id"]) for user in grants or []] or None,
    )
    workspace_id: str = client.create_workspace(CreateWorkspaceRequest(body=body)).id
    return workspace_id


def _run(client: Any, name: str, workspace_id: str = "0") -> str:
    """A cheap job, run to its end."""
    job_id: str = client.create_training_job(job(name, command="python -c pass", workspace_id=workspace_id)).metadata.id
    wait_for(client, job_id)
    return job_id


def _tag(client: Any, job_id: str, key: str, value: str = "v") -> None:
    body = CreateTmsTagsRequest(tags=[TmsTag(key=key, value=value)])
    client.create_train_job_tags(CreateTrainJobTagsRequest(training_job_id=job_id, body=body))


def _listed(client: Any, name: str, workspace_id: str | None = None) -> list[str]:
    like = Filter(key="name", operator="like", value=[name])
    found = client.list_training_jobs(
        ListTrainingJobsRequest(body=JobSearches(filters=[like], workspace_id=workspace_id))
    )
    return [item.metadata.id for item in found.items]


def _by_tag(client: Any, key: str, workspace_id: str | None = None) -> list[str]:
    body = ResourceInstancesFilterReq(tags=[MutiValueTag(key=key, values=[])], workspace_id=workspace_id)
    found = client.list_training_jobs_by_tags(ListTrainingJobsByTagsRequest(body=body))
    return [resource.resource_id for resource in found.resources]


def _project_tag_keys(client: Any) -> set[str]:
    return {tag.key for tag in client.list_training_job_tags(ListTrainingJobTagsRequest()).tags}


def _job_calls(client: Any, job_id: str) -> dict[str, Callable[[], Any]]:
    """Every call on one job: each must say the job does not exist when the caller may not see it."""
    terminate = JobActionType(action_type="terminate")
    batch = BatchDeleteJobsReq(jobs=[BatchDeleteJobItem(kind="job", metadata={"id": job_id})])
    tags = [TmsTag(key="intruder", value="x")]
    return {
        "show": lambda: client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id)),
        "stop": lambda: client.stop_training_job(StopTrainingJobRequest(training_job_id=job_id, body=terminate)),
        "describe": lambda: client.change_training_job_description(
            ChangeTrainingJobDescriptionRequest(training_job_id=job_id, body=JobUpdateRequestBody(description="x"))
        ),
        "logs-preview": lambda: client.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
        ),
        "logs": lambda: client.show_training_job_logs_from_aom(
            ShowTrainingJobLogsFromAomRequest(training_job_id=job_id, task_id="worker-0")
        ),
        "metrics": lambda: client.show_training_job_metrics(
            ShowTrainingJobMetricsRequest(training_job_id=job_id, task_id="worker-0")
        ),
        "events": lambda: client.list_training_job_events(ListTrainingJobEventsRequest(training_job_id=job_id)),
        "tasks": lambda: client.list_training_job_tasks(ListTrainingJobTasksRequest(training_job_id=job_id)),
        "show-tags": lambda: client.show_train_job_tags(ShowTrainJobTagsRequest(training_job_id=job_id)),
        "create-tags": lambda: client.create_train_job_tags(
            CreateTrainJobTagsRequest(training_job_id=job_id, body=CreateTmsTagsRequest(tags=tags))
        ),
        "delete-tags": lambda: client.delete_train_job_tags(
            DeleteTrainJobTagsRequest(training_job_id=job_id, body=DeleteTmsTagsRequest(tags=tags))
        ),
        "batch-delete": lambda: client.batch_delete_training_job(BatchDeleteTrainingJobRequest(body=batch)),
        "delete": lambda: client.delete_training_job(DeleteTrainingJobRequest(training_job_id=job_id)),
    }


def _assert_not_found(client: Any, job_id: str) -> None:
    for name, call in _job_calls(client, job_id).items():
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2775"), name


def _assert_intact(admin_client: Any, job_id: str, tags: dict[str, str]) -> None:
    shown = admin_client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
    assert shown.status.phase == "Completed" and shown.metadata.description == "test job"
    listed = admin_client.show_train_job_tags(ShowTrainJobTagsRequest(training_job_id=job_id))
    assert {tag.key: tag.value for tag in listed.tags} == tags


@pytest.fixture(scope="module")
def bystander_client(server: LiveServer) -> Any:
    """Another IAM user of the admin's project, in no grant."""
    return server.client(server.create_user("bystander"))


def test_private_workspace_jobs_are_invisible(admin_client: Any, member_client: Any, unique: Unique) -> None:
    name = unique("private")
    workspace_id = _workspace(admin_client, name, "PRIVATE")
    job_id = _run(admin_client, name, workspace_id)
    key = f"{name}-key"
    _tag(admin_client, job_id, key)

    _assert_not_found(member_client, job_id)
    assert _listed(member_client, name) == []
    assert _by_tag(member_client, key) == []
    assert key not in _project_tag_keys(member_client)
    count = CountTrainingJobsByTagsRequest(body=CountResourceInstancesReq(matches=None, without_any_tag=False))
    before = member_client.count_training_jobs_by_tags(count).total_count
    assert admin_client.count_training_jobs_by_tags(count).total_count > before

    # The creator (the main account) still sees all of it, untouched.
    _assert_intact(admin_client, job_id, {key: "v"})
    assert _listed(admin_client, name) == [job_id]
    assert _listed(admin_client, name, workspace_id) == [job_id]
    assert _by_tag(admin_client, key) == [job_id]
    assert key in _project_tag_keys(admin_client)


def test_forbidden_workspace_is_403(admin_client: Any, member_client: Any, unique: Unique) -> None:
    name = unique("forbidden")
    workspace_id = _workspace(admin_client, name, "PRIVATE")

    error = _error(
        lambda: member_client.create_training_job(job(name, command="python -c pass", workspace_id=workspace_id))
    )
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    assert _listed(admin_client, name) == []  # nothing was created

    error = _error(lambda: _listed(member_client, name, workspace_id))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    error = _error(lambda: _by_tag(member_client, "any", workspace_id))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    count = CountTrainingJobsByTagsRequest(body=CountResourceInstancesReq(workspace_id=workspace_id))
    error = _error(lambda: member_client.count_training_jobs_by_tags(count))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")


def test_public_workspace_jobs_are_visible(
    admin_client: Any, member_client: Any, bystander_client: Any, unique: Unique
) -> None:
    name = unique("public")
    job_id = _run(admin_client, name)  # the default workspace "0" is PUBLIC
    key = f"{name}-key"
    _tag(admin_client, job_id, key)

    for client in (member_client, bystander_client):
        shown = client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
        assert (shown.metadata.id, shown.status.phase) == (job_id, "Completed")
        assert _listed(client, name) == [job_id]
        assert _listed(client, name, "0") == [job_id]
        assert _by_tag(client, key) == [job_id]
        assert key in _project_tag_keys(client)
        preview = client.show_training_job_logs_preview(
            ShowTrainingJobLogsPreviewRequest(training_job_id=job_id, task_id="worker-0")
        )
        assert preview.full_size == preview.current_size
        tags = client.show_train_job_tags(ShowTrainJobTagsRequest(training_job_id=job_id)).tags
        assert [(t.key, t.value) for t in tags] == [(key, "v")]
        # Found, so a stop fails for its phase, not for its absence.
        error = _error(
            lambda: client.stop_training_job(  # noqa: B023 (called at once)
                StopTrainingJobRequest(training_job_id=job_id, body=JobActionType(action_type="terminate"))
            )
        )
        assert (error.status_code, error.error_code) == (409, "ModelArts.2796")

    # Every user of the project may work on it.
    _tag(member_client, job_id, f"{name}-member")
    assert _by_tag(admin_client, f"{name}-member") == [job_id]
    taken = member_client.validate_training_job_name(ValidateTrainingJobNameRequest(job_name=name, workspace_id="0"))
    assert taken.is_duplicate is True
    member_client.delete_training_job(DeleteTrainingJobRequest(training_job_id=job_id))
    error = _error(
        lambda: admin_client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
    )
    assert error.error_code == "ModelArts.2775"
    # A deleted job's tags leave the project's lists with it.
    assert _by_tag(admin_client, key) == []
    assert key not in _project_tag_keys(admin_client)


def test_internal_workspace_admits_its_grants(
    admin_client: Any,
    member_client: Any,
    member: dict[str, Any],
    bystander_client: Any,
    unique: Unique,
) -> None:
    name = unique("internal")
    workspace_id = _workspace(admin_client, name, "INTERNAL", grants=[member])
    job_id = _run(admin_client, f"{name}-admin", workspace_id)
    key = f"{name}-key"
    _tag(admin_client, job_id, key)

    # The granted member sees the admin's job and may run its own.
    shown = member_client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
    assert shown.metadata.workspace_id == workspace_id
    assert _listed(member_client, name, workspace_id) == [job_id]
    assert _by_tag(member_client, key, workspace_id) == [job_id]
    tasks = member_client.list_training_job_tasks(ListTrainingJobTasksRequest(training_job_id=job_id))
    assert [t.task for t in tasks.body] == ["worker-0"]
    own = _run(member_client, f"{name}-member", workspace_id)
    assert sorted(_listed(member_client, name)) == sorted([job_id, own])
    assert sorted(_listed(admin_client, name, workspace_id)) == sorted([job_id, own])

    # A user outside the grants sees neither job, and may not name the workspace.
    for hidden in (job_id, own):
        _assert_not_found(bystander_client, hidden)
    assert _listed(bystander_client, name) == []
    assert _by_tag(bystander_client, key) == []
    error = _error(lambda: _listed(bystander_client, name, workspace_id))
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    error = _error(
        lambda: bystander_client.create_training_job(
            job(f"{name}-bystander", command="python -c pass", workspace_id=workspace_id)
        )
    )
    assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    _assert_intact(admin_client, job_id, {key: "v"})


def test_members_private_workspace_is_open_to_the_main_account(
    admin_client: Any, member_client: Any, bystander_client: Any, unique: Unique
) -> None:
    name = unique("mine")
    workspace_id = _workspace(member_client, name, "PRIVATE")
    job_id = _run(member_client, name, workspace_id)
    assert _listed(member_client, name, workspace_id) == [job_id]
    # The main account sees every workspace of its project; another user does not.
    assert _listed(admin_client, name, workspace_id) == [job_id]
    shown = admin_client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
    assert shown.metadata.workspace_id == workspace_id
    _assert_not_found(bystander_client, job_id)
    assert _listed(bystander_client, name) == []


def test_jobs_of_another_project_are_not_found(admin_client: Any, outsider_client: Any, unique: Unique) -> None:
    name = unique("foreign")
    job_id = _run(admin_client, name)
    key = f"{name}-key"
    _tag(admin_client, job_id, key)
    private = _workspace(admin_client, f"{name}-ws", "PRIVATE")

    _assert_not_found(outsider_client, job_id)
    assert _listed(outsider_client, name) == []
    assert _listed(outsider_client, name, "0") == []  # its own default workspace
    assert _by_tag(outsider_client, key) == []
    assert key not in _project_tag_keys(outsider_client)
    # Another project's workspace does not exist for it.
    error = _error(
        lambda: outsider_client.create_training_job(job(name, command="python -c pass", workspace_id=private))
    )
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")
    error = _error(lambda: _listed(outsider_client, name, private))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")
    _assert_intact(admin_client, job_id, {key: "v"})
