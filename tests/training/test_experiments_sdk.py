"""Every training experiment endpoint through the official SDK against a live server: success and bad
input, plus the service functions training jobs call (``resolve_experiment``, ``experiment_reference``,
``next_serial_number``, ``job_counters``)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    ChangeTrainingExperimentRequest,
    ChangeTrainingExperimentRequestBody,
    CheckTrainingExperimentRequest,
    CreateTrainingExperimentRequest,
    CreateTrainingExperimentRequestBody,
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    DeleteTrainingExperimentRequest,
    DeleteWorkspaceRequest,
    ListTrainingExperimentsRequest,
    ShowTrainingExperimentDetailsRequest,
    TrainingExperimentRequestMetadata,
)
from sqlalchemy.orm import Session

from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal, principal_for_access_key
from openarts.training.experiments import service
from tests.conftest import InProcess
from tests.training.conftest import Raw

Unique = Callable[[str], str]
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _create(client: Any, name: str, **fields: Any) -> Any:
    body = CreateTrainingExperimentRequestBody(metadata=TrainingExperimentRequestMetadata(name=name, **fields))
    return client.create_training_experiment(CreateTrainingExperimentRequest(body=body))


def _show(client: Any, experiment_id: str) -> Any:
    return client.show_training_experiment_details(ShowTrainingExperimentDetailsRequest(experiment_id=experiment_id))


def _change(client: Any, experiment_id: str, **fields: Any) -> Any:
    body = ChangeTrainingExperimentRequestBody(**fields)
    return client.change_training_experiment(ChangeTrainingExperimentRequest(experiment_id=experiment_id, body=body))


def _taken(client: Any, name: str, workspace_id: str | None = None) -> bool:
    request = CheckTrainingExperimentRequest(experiment_name=name, workspace_id=workspace_id)
    duplicate: bool = client.check_training_experiment(request).is_duplicate
    return duplicate


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _workspace(client: Any, name: str, auth_type: str = "PUBLIC") -> Any:
    return client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=name, auth_type=auth_type)))


# --- create, show, check, change, delete -------------------------------------------------------


def test_experiment_lifecycle(admin_client: Any, unique: Unique) -> None:
    name = unique("exp")
    created = _create(admin_client, name, description="first try")
    assert created.status_code == 201
    metadata = created.metadata
    assert UUID4.match(metadata.id)
    assert (metadata.name, metadata.description, metadata.workspace_id) == (name, "first try", "0")
    assert metadata.create_time == metadata.update_time > 0
    assert created.statistic.job_count == 0

    shown = _show(admin_client, metadata.id)
    assert shown.status_code == 200
    assert shown.metadata.to_dict() == metadata.to_dict()
    assert _taken(admin_client, name) and _taken(admin_client, name, "0")
    assert not _taken(admin_client, unique("free"))

    renamed = unique("exp-renamed")
    changed = _change(admin_client, metadata.id, name=renamed, description="second try")
    assert changed.status_code == 200
    assert (changed.name, changed.description) == (renamed, "second try")
    shown = _show(admin_client, metadata.id)
    assert (shown.metadata.name, shown.metadata.description) == (renamed, "second try")
    assert shown.metadata.update_time >= shown.metadata.create_time
    assert not _taken(admin_client, name) and _taken(admin_client, renamed)

    only_description = _change(admin_client, metadata.id, description="")
    assert (only_description.name, only_description.description) == (renamed, "")

    deleted = admin_client.delete_training_experiment(DeleteTrainingExperimentRequest(experiment_id=metadata.id))
    assert deleted.status_code == 202
    error = _error(lambda: _show(admin_client, metadata.id))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2788")
    assert metadata.id in error.error_msg


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "x" * 65}, "ModelArts.2788"),
        ({"name": ""}, "ModelArts.2788"),
        ({"name": "bad name!"}, "ModelArts.2788"),
        ({"name": 42}, "ModelArts.2788"),
        ({"name": "ok", "description": "d" * 257}, "ModelArts.2788"),
        ({"name": "ok", "description": "<script>"}, "ModelArts.2788"),
        ({"name": "ok", "description": "two\nlines"}, "ModelArts.2788"),
        ({"name": "ok", "workspace_id": "f" * 32}, "ModelArts.7005"),
    ],
)
def test_create_refuses_bad_input(admin_client: Any, unique: Unique, fields: dict[str, Any], code: str) -> None:
    if fields.get("name") == "ok":
        fields = {**fields, "name": unique("ok")}
    before = admin_client.list_training_experiments(ListTrainingExperimentsRequest(workspace_id="0")).total
    error = _error(lambda: _create(admin_client, **fields))
    assert (error.status_code, error.error_code) == (400, code)
    assert error.error_msg
    after = admin_client.list_training_experiments(ListTrainingExperimentsRequest(workspace_id="0")).total
    assert after == before  # nothing half-made


@pytest.mark.parametrize(
    "body",
    [{}, {"metadata": {}}, {"metadata": {"name": "ok", "colour": "red"}}, {"name": "ok"}, [], b"{not json"],
)
def test_malformed_bodies_are_2788(raw: Raw, body: Any) -> None:
    response = raw("POST", "/v2/{project_id}/training-experiments", body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.2788"


def test_duplicate_names(admin_client: Any, unique: Unique) -> None:
    first = _create(admin_client, unique("dup-a"))
    second = _create(admin_client, unique("dup-b"))
    error = _error(lambda: _create(admin_client, first.metadata.name))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2751")
    error = _error(lambda: _change(admin_client, second.metadata.id, name=first.metadata.name))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2751")
    assert _show(admin_client, second.metadata.id).metadata.name == second.metadata.name
    # Names are unique per workspace.
    workspace = _workspace(admin_client, unique("exp-ws"))
    assert not _taken(admin_client, first.metadata.name, workspace.id)
    elsewhere = _create(admin_client, first.metadata.name, workspace_id=workspace.id)
    assert elsewhere.metadata.workspace_id == workspace.id
    assert _taken(admin_client, first.metadata.name, workspace.id)


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"name": "x" * 65}, "ModelArts.2788"),
        ({"name": "a/b"}, "ModelArts.2788"),
        ({"description": "d" * 257}, "ModelArts.2788"),
        ({"description": 5}, "ModelArts.2788"),
    ],
)
def test_change_refuses_bad_input(admin_client: Any, unique: Unique, fields: dict[str, Any], code: str) -> None:
    created = _create(admin_client, unique("chg"), description="kept")
    error = _error(lambda: _change(admin_client, created.metadata.id, **fields))
    assert (error.status_code, error.error_code) == (400, code)
    shown = _show(admin_client, created.metadata.id)
    assert (shown.metadata.name, shown.metadata.description) == (created.metadata.name, "kept")


def test_unknown_experiments(admin_client: Any) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    calls: list[Callable[[], Any]] = [
        lambda: _show(admin_client, missing),
        lambda: _change(admin_client, missing, description="x"),
        lambda: admin_client.delete_training_experiment(DeleteTrainingExperimentRequest(experiment_id=missing)),
    ]
    for call in calls:
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2788")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"experiment_name": "x" * 65}, "ModelArts.2788"),
        ({"experiment_name": "no spaces"}, "ModelArts.2788"),
        ({}, "ModelArts.2788"),
        ({"experiment_name": "fine", "workspace_id": "f" * 32}, "ModelArts.7005"),
    ],
)
def test_name_check_refuses_bad_queries(admin_client: Any, query: dict[str, Any], code: str) -> None:
    error = _error(lambda: admin_client.check_training_experiment(CheckTrainingExperimentRequest(**query)))
    assert (error.status_code, error.error_code) == (400, code)


# --- list -------------------------------------------------------------------------------------


def test_list_sorts_and_pages(admin_client: Any, unique: Unique) -> None:
    workspace = _workspace(admin_client, unique("exp-list"))
    tag = unique("lst")
    names = [f"{tag}-a", f"{tag}-c", f"{tag}-b"]
    for name in names:
        _create(admin_client, name, workspace_id=workspace.id)

    def listed(**query: Any) -> Any:
        return admin_client.list_training_experiments(
            ListTrainingExperimentsRequest(workspace_id=workspace.id, **query)
        )

    everything = listed()
    assert (everything.total, everything.count, len(everything.items)) == (3, 3, 3)
    assert (everything.limit, everything.offset, everything.sort_by, everything.order) == (10, 0, "create_time", "desc")
    assert [e.metadata.name for e in everything.items] == names[::-1]
    assert all(e.statistic.job_count == 0 for e in everything.items)
    assert [e.metadata.name for e in listed(sort_by="name", order="asc").items] == sorted(names)
    page = listed(sort_by="name", order="desc", offset=1, limit=1)
    assert (page.total, [e.metadata.name for e in page.items]) == (3, [f"{tag}-b"])
    assert listed(offset=5).items == []
    assert [e.metadata.name for e in listed(sort_by="update_time", order="asc").items] == names

    anywhere = admin_client.list_training_experiments(ListTrainingExperimentsRequest(limit=50))
    assert anywhere.total >= 3


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": 0}, "ModelArts.2788"),
        ({"limit": 51}, "ModelArts.2788"),
        ({"offset": -1}, "ModelArts.2788"),
        ({"order": "sideways"}, "ModelArts.2788"),
        ({"sort_by": "job_count"}, "ModelArts.2790"),
        ({"workspace_id": "f" * 32}, "ModelArts.7005"),
    ],
)
def test_list_refuses_bad_queries(admin_client: Any, query: dict[str, Any], code: str) -> None:
    error = _error(lambda: admin_client.list_training_experiments(ListTrainingExperimentsRequest(**query)))
    assert (error.status_code, error.error_code) == (400, code)


# --- access rules -----------------------------------------------------------------------------


def test_private_workspaces_are_their_owners(admin_client: Any, member_client: Any, unique: Unique) -> None:
    private = _workspace(admin_client, unique("exp-private"), auth_type="PRIVATE")
    created = _create(admin_client, unique("secret"), workspace_id=private.id)
    experiment_id = created.metadata.id
    denied: list[Callable[[], Any]] = [
        lambda: _show(member_client, experiment_id),
        lambda: _change(member_client, experiment_id, description="mine"),
        lambda: member_client.delete_training_experiment(DeleteTrainingExperimentRequest(experiment_id=experiment_id)),
        lambda: _create(member_client, unique("intruder"), workspace_id=private.id),
        lambda: member_client.list_training_experiments(ListTrainingExperimentsRequest(workspace_id=private.id)),
        lambda: _taken(member_client, created.metadata.name, private.id),
    ]
    for call in denied:
        error = _error(call)
        assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    everywhere = member_client.list_training_experiments(ListTrainingExperimentsRequest(limit=50))
    assert experiment_id not in [e.metadata.id for e in everywhere.items]
    assert _show(admin_client, experiment_id).metadata.id == experiment_id
    # The default workspace is PUBLIC.
    public = _create(admin_client, unique("shared"))
    assert _show(member_client, public.metadata.id).metadata.id == public.metadata.id


def test_other_projects_are_out_of_reach(admin_client: Any, outsider_client: Any, unique: Unique) -> None:
    created = _create(admin_client, unique("home"))
    error = _error(lambda: _show(outsider_client, created.metadata.id))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2788")
    error = _error(lambda: _change(outsider_client, created.metadata.id, description="x"))
    assert error.error_code == "ModelArts.2788"
    assert not _taken(outsider_client, created.metadata.name)
    theirs = outsider_client.list_training_experiments(ListTrainingExperimentsRequest(limit=50))
    assert created.metadata.id not in [e.metadata.id for e in theirs.items]
    assert _show(admin_client, created.metadata.id).metadata.description == ""


def test_workspace_holding_experiments_cannot_be_deleted(admin_client: Any, unique: Unique) -> None:
    workspace = _workspace(admin_client, unique("exp-holder"))
    created = _create(admin_client, unique("held"), workspace_id=workspace.id)
    error = _error(lambda: admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace.id)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7004")
    assert "1 training experiments" in error.error_msg
    admin_client.delete_training_experiment(DeleteTrainingExperimentRequest(experiment_id=created.metadata.id))
    admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace.id))


# --- what training jobs call ------------------------------------------------------------------


def _principal(inprocess: InProcess, creds: dict[str, Any]) -> Principal:
    found = principal_for_access_key(inprocess.db, creds["access_key"])
    assert found is not None
    return found[0]


def _create_in_process(inprocess: InProcess, name: str, workspace_id: str = "0") -> str:
    path = f"/v2/{inprocess.admin['project_id']}/training-experiments"
    response = inprocess.signed("POST", path, body={"metadata": {"name": name, "workspace_id": workspace_id}})
    assert response.status_code == 201, response.text
    experiment_id: str = response.json()["metadata"]["id"]
    return experiment_id


def test_resolve_experiment(inprocess: InProcess) -> None:
    experiment_id = _create_in_process(inprocess, "resolvable")
    admin = _principal(inprocess, inprocess.admin)
    with inprocess.db.read() as session:
        by_id = service.resolve_experiment(session, admin, "0", experiment_id=experiment_id, name=None)
        by_name = service.resolve_experiment(session, admin, "0", experiment_id=None, name="resolvable")
        both = service.resolve_experiment(session, admin, "0", experiment_id=experiment_id, name="resolvable")
        assert by_id.id == by_name.id == both.id == experiment_id
        assert service.experiment_reference(by_id) == {"id": experiment_id, "name": "resolvable"}
        assert service.experiment_reference(by_id, "3") == {
            "id": experiment_id,
            "name": "resolvable",
            "serial_number": "3",
        }
        refused: list[dict[str, str | None]] = [
            {"experiment_id": "00000000-0000-4000-8000-000000000000", "name": None},
            {"experiment_id": None, "name": "no-such-experiment"},
            {"experiment_id": experiment_id, "name": "another-name"},
            {"experiment_id": None, "name": None},
        ]
        for reference in refused:
            with pytest.raises(ApiError) as caught:
                service.resolve_experiment(session, admin, "0", **reference)
            assert (caught.value.status, caught.value.code) == (400, "ModelArts.2788")
            assert caught.value.solution
        # An experiment of another workspace is unknown to a job of this one.
        with pytest.raises(ApiError):
            service.resolve_experiment(session, admin, "other", experiment_id=experiment_id, name=None)


def test_serial_numbers_count_up(inprocess: InProcess) -> None:
    experiment_id = _create_in_process(inprocess, "numbered")
    admin = _principal(inprocess, inprocess.admin)
    numbers = []
    for _ in range(3):
        with inprocess.db.write() as session:
            experiment = service.resolve_experiment(session, admin, "0", experiment_id=experiment_id, name=None)
            numbers.append(service.next_serial_number(session, experiment))
    assert numbers == ["1", "2", "3"]


@pytest.fixture
def counted_jobs() -> Iterator[dict[str, int]]:
    """A stand-in for the jobs code's counter: experiment id -> number of jobs."""
    counts: dict[str, int] = {}

    def counter(_session: Session, experiment_id: str) -> int:
        return counts.get(experiment_id, 0)

    service.job_counters.append(counter)
    try:
        yield counts
    finally:
        service.job_counters.remove(counter)


def test_job_count_comes_from_the_registered_counters(inprocess: InProcess, counted_jobs: dict[str, int]) -> None:
    experiment_id = _create_in_process(inprocess, "busy")
    counted_jobs[experiment_id] = 4
    path = f"/v2/{inprocess.admin['project_id']}/training-experiments"
    shown = inprocess.signed("GET", f"{path}/{experiment_id}").json()
    assert shown["statistic"] == {"job_count": 4}
    listed = inprocess.signed("GET", path).json()
    assert [item["statistic"]["job_count"] for item in listed["items"]] == [4]
    # Deleting an experiment that jobs still name is allowed: the jobs keep their reference.
    assert inprocess.signed("DELETE", f"{path}/{experiment_id}").status_code == 202
