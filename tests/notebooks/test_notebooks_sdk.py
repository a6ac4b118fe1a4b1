"""Notebook instances through the official SDK against a live server: the seed's create example, a real
JupyterLab reached through the proxied ``url`` whose kernel runs code, stop and start with the work
directory kept, wrong-state errors, flavors, storage, tags, delete leaving no process behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    AttachDynamicStorageRequest,
    CreateImageRequest,
    CreateNotebookTagsRequest,
    CreateTmsTagsRequest,
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    DataVolumesReq,
    DeleteNotebookRequest,
    DeleteNotebookTagsRequest,
    DeleteTmsTagsRequest,
    DetachDynamicStorageRequest,
    ImageCreateReq,
    LeaseReq,
    ListDynamicStoragesRequest,
    ListFlavorsRequest,
    ListNotebooksRequest,
    NotebookCustomSpec,
    NotebookUpdateRequest,
    RenewLeaseRequest,
    ShowDynamicStorageRequest,
    ShowLeaseRequest,
    ShowNotebookTagsRequest,
    ShowSwitchableFlavorsRequest,
    StartNotebookRequest,
    StopNotebookRequest,
    TmsTag,
    UpdateNotebookRequest,
    UpdateWorkspaceQuotasReq,
    UpdateWorkspaceQuotasReqQuotas,
    UpdateWorkspaceQuotasRequest,
    VolumeMountRequest,
)

from tests.notebooks.notebook_support import (
    SEED_IMAGE_ID,
    api_url,
    create,
    image_ids,
    instance_processes,
    jupyter_get,
    run_code,
    show,
    wait_gone,
    wait_status,
)
from tests.support.server import LiveServer

pytestmark = pytest.mark.timeout(600)

HOUR_MS = 3_600_000
# A small custom spec: fits beside a 2u instance in the test server's four CPUs.
SMALL = NotebookCustomSpec(cpu=0.5, memory=1024, arch="X86_64", category="CPU")


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as raised:
        call()
    return raised.value


def test_the_seed_example_lives_a_whole_life(
    nb_client: Any, notebook_server: LiveServer, unique: Callable[[str], str]
) -> None:
    assert SEED_IMAGE_ID in image_ids(nb_client)
    created = create(nb_client, unique("notebooks_test"))
    assert created.status == "CREATING"
    assert created.flavor == "modelarts.vm.cpu.2u" and created.feature == "NOTEBOOK"
    assert created.image.id == SEED_IMAGE_ID and created.image.type == "BUILD_IN"
    assert created.lease.type == "TIMING" and created.lease.enable is True
    assert created.lease.duration == HOUR_MS and created.lease.create_at == created.lease.update_at
    assert created.volume.category == "EVS" and created.volume.capacity == 50
    assert created.volume.mount_path == "/home/ma-user/work/"
    assert created.token and created.url is None
    notebook_id = created.id

    running = wait_status(nb_client, notebook_id, "RUNNING")
    assert running.url == f"{notebook_server.url}/authoring/{notebook_id}/lab"
    page = httpx.get(running.url, params={"token": running.token}, timeout=30, follow_redirects=True)
    assert page.status_code == 200 and "JupyterLab" in page.text
    assert "42" in run_code(running.url, running.token, "open('kept.txt', 'w').write('still here'); print(6 * 7)")
    # An upload larger than the API's 4 MB body cap goes through: JupyterLab has limits of its own.
    upload = httpx.put(
        api_url(running.url) + "api/contents/big.txt",
        headers={"Authorization": f"token {running.token}"},
        json={"type": "file", "format": "text", "content": "x" * (5 * 1024 * 1024)},
        timeout=60,
    )
    assert upload.status_code in (200, 201), upload.text

    # Wrong states while it runs.
    assert _error(lambda: nb_client.start_notebook(StartNotebookRequest(id=notebook_id))).error_code == "ModelArts.6305"
    assert _error(lambda: nb_client.delete_notebook(DeleteNotebookRequest(id=notebook_id))).error_code == (
        "ModelArts.6304"
    )
    flavor_change = UpdateNotebookRequest(id=notebook_id, body=NotebookUpdateRequest(flavor="modelarts.vm.cpu.4u"))
    assert _error(lambda: nb_client.update_notebook(flavor_change)).error_code == "ModelArts.6347"
    # The description may change at any time.
    described = nb_client.update_notebook(
        UpdateNotebookRequest(id=notebook_id, body=NotebookUpdateRequest(description="still running"))
    )
    assert described.description == "still running" and described.status == "RUNNING"

    lease = nb_client.show_lease(ShowLeaseRequest(id=notebook_id))
    assert lease.type == "TIMING" and lease.create_at == created.lease.create_at
    renewed = nb_client.renew_lease(
        RenewLeaseRequest(id=notebook_id, duration=2 * HOUR_MS, body=LeaseReq(duration=HOUR_MS, type="IDLE"))
    )
    # The query's duration wins and forces TIMING; the expiry is now + 2 h, measured from create_at.
    assert renewed.type == "TIMING"
    assert renewed.create_at + renewed.duration == pytest.approx(renewed.update_at + 2 * HOUR_MS, abs=5)

    stopping = nb_client.stop_notebook(StopNotebookRequest(id=notebook_id))
    assert stopping.status == "STOPPING"
    wait_status(nb_client, notebook_id, "STOPPED")
    assert instance_processes(notebook_server.data_dir, notebook_id) == []  # no JupyterLab, no kernel
    assert _error(lambda: nb_client.stop_notebook(StopNotebookRequest(id=notebook_id))).error_code == "ModelArts.6307"
    assert _error(lambda: nb_client.show_lease(ShowLeaseRequest(id=notebook_id))).error_code == "ModelArts.6327"

    # Stopped: the flavor may change; then start again with the work directory as it was.
    updated = nb_client.update_notebook(flavor_change)
    assert updated.flavor == "modelarts.vm.cpu.4u"
    started = nb_client.start_notebook(StartNotebookRequest(id=notebook_id, duration=2 * HOUR_MS))
    assert started.status == "STARTING"
    assert started.lease.create_at + started.lease.duration == pytest.approx(
        started.lease.update_at + 2 * HOUR_MS, abs=5
    )
    running = wait_status(nb_client, notebook_id, "RUNNING")
    kept = jupyter_get(running.url, running.token, "api/contents/kept.txt")
    assert kept.status_code == 200 and kept.json()["content"] == "still here"

    nb_client.stop_notebook(StopNotebookRequest(id=notebook_id))
    wait_status(nb_client, notebook_id, "STOPPED")
    deleting = nb_client.delete_notebook(DeleteNotebookRequest(id=notebook_id))
    assert deleting.status == "DELETING"
    wait_gone(nb_client, notebook_id)
    assert not (notebook_server.data_dir / "notebooks" / notebook_id).exists()
    assert instance_processes(notebook_server.data_dir, notebook_id) == []


def test_the_proxy_serves_an_instance_only_to_its_own_token(
    nb_client: Any, nb_member_client: Any, notebook_server: LiveServer, unique: Callable[[str], str]
) -> None:
    mine = create(nb_client, unique("mine"), flavor=None, custom_spec=SMALL)
    theirs = create(nb_member_client, unique("theirs"), flavor=None, custom_spec=SMALL)
    mine = wait_status(nb_client, mine.id, "RUNNING")
    theirs = wait_status(nb_member_client, theirs.id, "RUNNING")
    try:
        assert jupyter_get(mine.url, mine.token, "api/status").status_code == 200
        for token in (theirs.token, "not-a-token"):
            refused = jupyter_get(mine.url, token, "api/status")
            assert refused.status_code == 403, refused.text
        assert jupyter_get(theirs.url, mine.token, "api/kernels").status_code == 403
        assert httpx.get(mine.url, timeout=10).status_code == 403  # no token at all
        # An instance is its owner's: another user of the project does not even see it.
        missing = _error(lambda: show(nb_member_client, mine.id))
        assert missing.error_code == "ModelArts.6309"
        own = nb_member_client.list_notebooks(ListNotebooksRequest(limit=50)).data
        assert [n.id for n in own] == [theirs.id]
    finally:
        for client, notebook in ((nb_client, mine), (nb_member_client, theirs)):
            client.stop_notebook(StopNotebookRequest(id=notebook.id))
        for client, notebook in ((nb_client, mine), (nb_member_client, theirs)):
            wait_status(client, notebook.id, "STOPPED")
            client.delete_notebook(DeleteNotebookRequest(id=notebook.id))


def test_a_full_pool_refuses_a_create_and_the_flavors_say_so(nb_client: Any, unique: Callable[[str], str]) -> None:
    big = create(nb_client, unique("big"), flavor="modelarts.vm.cpu.4u")  # the whole pool of four CPUs
    try:
        refused = _error(lambda: create(nb_client, unique("small"), flavor=None, custom_spec=SMALL))
        assert refused.error_code == "ModelArts.6329" and "capacity pool" in refused.error_msg
        flavors = nb_client.list_flavors(ListFlavorsRequest(limit=50)).data
        by_id = {flavor.id: flavor for flavor in flavors}
        assert by_id["modelarts.vm.cpu.2u"].sold_out is True
        assert by_id["modelarts.vm.cpu.2u"].memory == 8 * 1024 * 1024  # KB, as ModelArts
        switchable = nb_client.show_switchable_flavors(ShowSwitchableFlavorsRequest(id=big.id)).data
        assert "modelarts.vm.cpu.4u" not in [flavor.id for flavor in switchable]
        wait_status(nb_client, big.id, "RUNNING")
    finally:
        wait_status(nb_client, big.id, "RUNNING", "CREATE_FAILED")
        nb_client.stop_notebook(StopNotebookRequest(id=big.id))
        wait_status(nb_client, big.id, "STOPPED")
        nb_client.delete_notebook(DeleteNotebookRequest(id=big.id))
    wait_gone(nb_client, big.id)


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"flavor": "modelarts.vm.gpu.nope"}, "ModelArts.6323"),
        ({"image_id": "00000000-0000-0000-0000-000000000000"}, "ModelArts.6797"),
        ({"volume": VolumeMountRequest(category="evs", ownership="managed", capacity=5000)}, "ModelArts.6331"),
        ({"volume": VolumeMountRequest(category="efs", ownership="dedicated")}, "ModelArts.6336"),
        ({"duration": 60_000}, "ModelArts.6349"),
        ({"lease": LeaseReq(duration=HOUR_MS, type="forever")}, "ModelArts.6336"),
        ({"name": "bad name!"}, "ModelArts.6334"),
        ({"description": "<script>"}, "ModelArts.6334"),
        ({"feature": "DEFAULT"}, "ModelArts.6870"),
        ({"workspace_id": "f" * 32}, "ModelArts.7005"),
        ({"pool_id": "pool-1"}, "ModelArts.6336"),
        (
            {"data_volumes": [VolumeMountRequest(category="OBS", uri="obs://bucket/data/", mount_path="/etc/x")]},
            "ModelArts.6336",
        ),
        (
            {"data_volumes": [VolumeMountRequest(category="OBS", uri="obs://bucket/../x/", mount_path="data")]},
            "ModelArts.2791",
        ),
    ],
)
def test_bad_creates_are_refused_and_leave_nothing(
    nb_client: Any, unique: Callable[[str], str], overrides: dict[str, Any], code: str
) -> None:
    values = {"name": unique("refused"), **overrides}
    name = values.pop("name")
    assert _error(lambda: create(nb_client, name, **values)).error_code == code
    assert nb_client.list_notebooks(ListNotebooksRequest(limit=50, feature="ALL")).data == []


def test_unknown_instances_are_6309(nb_client: Any) -> None:
    missing = "0" * 8 + "-0000-0000-0000-" + "0" * 12
    for call in (
        lambda: show(nb_client, missing),
        lambda: nb_client.start_notebook(StartNotebookRequest(id=missing)),
        lambda: nb_client.stop_notebook(StopNotebookRequest(id=missing)),
        lambda: nb_client.delete_notebook(DeleteNotebookRequest(id=missing)),
        lambda: nb_client.show_lease(ShowLeaseRequest(id=missing)),
    ):
        assert _error(call).error_code == "ModelArts.6309"


def test_storage_tags_and_listing_on_a_stopped_instance(
    nb_client: Any, notebook_server: LiveServer, unique: Callable[[str], str]
) -> None:
    """Everything that needs no running server: on an instance created, run once and stopped."""
    name = unique("tidy")
    notebook = create(nb_client, name, flavor=None, custom_spec=SMALL)
    wait_status(nb_client, notebook.id, "RUNNING")
    nb_client.stop_notebook(StopNotebookRequest(id=notebook.id))
    wait_status(nb_client, notebook.id, "STOPPED")
    try:
        # A dynamic storage: an object-store folder appears in the work directory (a link, local store).
        bucket = notebook_server.data_dir / "obs" / "nb-bucket" / "shared"
        bucket.mkdir(parents=True)
        (bucket / "data.csv").write_text("a,b\n1,2\n")
        attached = nb_client.attach_dynamic_storage(
            AttachDynamicStorageRequest(
                instance_id=notebook.id,
                body=DataVolumesReq(
                    category="OBS", uri="obs://nb-bucket/shared/", mount_path="/home/ma-user/work/shared"
                ),
            )
        )
        assert attached.status == "MOUNTING" and attached.mount_type == "DYNAMIC"
        work = notebook_server.data_dir / "notebooks" / notebook.id / "work"
        for _ in range(100):
            shown = nb_client.show_dynamic_storage(
                ShowDynamicStorageRequest(instance_id=notebook.id, storage_id=attached.id)
            )
            if shown.status != "MOUNTING":
                break
            time.sleep(0.05)
        assert shown.status == "MOUNTED", shown.failure_reason
        assert (work / "shared" / "data.csv").read_text() == "a,b\n1,2\n"
        listed = nb_client.list_dynamic_storages(ListDynamicStoragesRequest(instance_id=notebook.id))
        assert [s.id for s in listed.data] == [attached.id] and listed.total == 1
        same_place = _error(
            lambda: nb_client.attach_dynamic_storage(
                AttachDynamicStorageRequest(
                    instance_id=notebook.id,
                    body=DataVolumesReq(category="OBS", uri="obs://nb-bucket/other/", mount_path="shared"),
                )
            )
        )
        assert same_place.error_code == "ModelArts.6336"
        detached = nb_client.detach_dynamic_storage(
            DetachDynamicStorageRequest(instance_id=notebook.id, storage_id=attached.id)
        )
        assert detached.status == "UNMOUNTING"
        for _ in range(100):
            if not nb_client.list_dynamic_storages(ListDynamicStoragesRequest(instance_id=notebook.id)).data:
                break
            time.sleep(0.05)
        assert not (work / "shared").exists() and (bucket / "data.csv").exists()  # the store keeps its data

        # Tags: set, overwrite, list by project, filter the list by them, delete (a missing one is no error).
        nb_client.create_notebook_tags(
            CreateNotebookTagsRequest(
                resource_id=notebook.id,
                body=CreateTmsTagsRequest(tags=[TmsTag(key="team", value="a"), TmsTag(key="stage", value="dev")]),
            )
        )
        nb_client.create_notebook_tags(
            CreateNotebookTagsRequest(
                resource_id=notebook.id, body=CreateTmsTagsRequest(tags=[TmsTag(key="team", value="b")])
            )
        )
        assert {(t.key, t.value) for t in show(nb_client, notebook.id).tags} == {("team", "b"), ("stage", "dev")}
        project_tags = {t.key: t.values for t in nb_client.show_notebook_tags(ShowNotebookTagsRequest()).tags}
        assert project_tags["team"] == ["b"]
        tagged = nb_client.list_notebooks(ListNotebooksRequest(tags="team|b", name=name)).data
        assert [n.id for n in tagged] == [notebook.id]
        assert nb_client.list_notebooks(ListNotebooksRequest(tags="team|a", name=name)).data == []
        nb_client.delete_notebook_tags(
            DeleteNotebookTagsRequest(
                resource_id=notebook.id,
                body=DeleteTmsTagsRequest(tags=[TmsTag(key="team", value="b"), TmsTag(key="absent", value="x")]),
            )
        )
        assert [t.key for t in show(nb_client, notebook.id).tags] == ["stage"]

        # Saving an image needs a container runtime: a clear refusal.
        image_request = CreateImageRequest(id=notebook.id, body=ImageCreateReq(name="saved", namespace="me", tag="v1"))
        refused = _error(lambda: nb_client.create_image(image_request))
        assert refused.error_code == "ModelArts.6336" and "container runtime" in refused.error_msg

        # Listing: filters, paging shape, status.
        page = nb_client.list_notebooks(ListNotebooksRequest(name=name, status="STOPPED", limit=10))
        assert page.total == 1 and page.size == 10 and page.current == 0 and page.pages == 1
        assert nb_client.list_notebooks(ListNotebooksRequest(name=name, status="RUNNING")).data == []
        bad_sort = _error(lambda: nb_client.list_notebooks(ListNotebooksRequest(sort_key="token")))
        assert bad_sort.error_code == "ModelArts.6303"
    finally:
        nb_client.delete_notebook(DeleteNotebookRequest(id=notebook.id))
    wait_gone(nb_client, notebook.id)
    assert (notebook_server.data_dir / "obs" / "nb-bucket" / "shared" / "data.csv").exists()


def test_the_workspace_notebook_quota_is_enforced(nb_client: Any, unique: Callable[[str], str]) -> None:
    workspace = nb_client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=unique("nbquota"))))
    quotas = UpdateWorkspaceQuotasReq(quotas=[UpdateWorkspaceQuotasReqQuotas(resource="notebook.num", quota=1)])
    nb_client.update_workspace_quotas(UpdateWorkspaceQuotasRequest(workspace_id=workspace.id, body=quotas))
    first = create(nb_client, unique("first"), flavor=None, custom_spec=SMALL, workspace_id=workspace.id)
    try:
        refused = _error(
            lambda: create(nb_client, unique("over"), flavor=None, custom_spec=SMALL, workspace_id=workspace.id)
        )
        assert refused.error_code == "ModelArts.0118" and "notebook.num" in refused.error_msg
        listed = nb_client.list_notebooks(ListNotebooksRequest(workspace_id=workspace.id)).data
        assert [n.id for n in listed] == [first.id]
    finally:
        wait_status(nb_client, first.id, "RUNNING", "CREATE_FAILED")
        nb_client.stop_notebook(StopNotebookRequest(id=first.id))
        wait_status(nb_client, first.id, "STOPPED")
        nb_client.delete_notebook(DeleteNotebookRequest(id=first.id))
