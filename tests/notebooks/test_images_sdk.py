"""Every image endpoint through the official SDK against a live server: the built-in catalogue, real
registrations (the environment's interpreter really runs), groups, sync, delete and workspace access.

The server's own virtualenv has JupyterLab, so it is the environment that registrations accept; bare
virtualenvs made in ``tmp_path`` (no pip, seconds to make) are the ones they refuse. An environment
that gains or loses JupyterLab between syncs is a bare virtualenv with a ``.pth`` file pointing at the
server's site-packages, added and removed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    DeleteImageGroupRequest,
    DeleteImageGroupRequestBody,
    DeleteImageRequest,
    DeleteImageRequestBody,
    ImageRegRequest,
    ListImageGroupRequest,
    ListImageRequest,
    RegisterImageRequest,
    ShowImageRequest,
    SyncImageRequest,
    UpdateImageGroupRequest,
    UpdateImageGroupRequestBody,
    UpdateImageGroupRequestBodyTags,
)

from openarts.notebooks.images.catalogue import BUILT_INS
from tests.support.server import LiveServer
from tests.support.signing import sign

SEED_IMAGE = "e1a07296-22a8-4f05-8bc8-e936c8e54090"  # the manual's create-notebook example names it
SERVER_ENV = Path(sys.executable).parent.parent  # the virtualenv the tests (and the server) run in
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
IMAGE_FIELDS = {
    "id",
    "name",
    "namespace",
    "tag",
    "swr_path",
    "type",
    "arch",
    "service_type",
    "status",
    "visibility",
    "dev_services",
    "resource_categories",
    "description",
    "workspace_id",
    "create_at",
    "update_at",
}


# --- helpers -----------------------------------------------------------------------------------


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _register(client: Any, swr_path: str, **fields: Any) -> Any:
    return client.register_image(RegisterImageRequest(body=ImageRegRequest(swr_path=swr_path, **fields)))


def _show(client: Any, image_id: str) -> Any:
    return client.show_image(ShowImageRequest(id=image_id))


def _delete(client: Any, image_id: str) -> Any:
    return client.delete_image(DeleteImageRequest(id=image_id))


def _workspace(client: Any, name: str, auth_type: str = "PUBLIC") -> str:
    created = client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=name, auth_type=auth_type)))
    workspace_id: str = created.id
    return workspace_id


def _dedicated(client: Any, workspace_id: str, **query: Any) -> Any:
    return client.list_image(ListImageRequest(type="DEDICATED", workspace_id=workspace_id, **query))


def _groups(client: Any, workspace_id: str, **query: Any) -> Any:
    return client.list_image_group(ListImageGroupRequest(workspace_id=workspace_id, **query))


def _bare_venv(folder: Path) -> Path:
    """A virtualenv without pip, hence without JupyterLab."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True, timeout=120)
    return folder


def _site_packages(venv: Path) -> Path:
    purelib = Path(sysconfig.get_path("purelib"))
    return venv / purelib.relative_to(sys.prefix)


def _lend_jupyter(venv: Path) -> Path:
    """Make the server's packages (JupyterLab among them) importable in ``venv``; returns the .pth file."""
    pth = _site_packages(venv) / "openarts-test.pth"
    pth.write_text(sysconfig.get_path("purelib") + "\n")
    return pth


@pytest.fixture
def tag() -> str:
    """A tag no other test uses: every test registers the same server environment under its own tag."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def workspace(admin_client: Any) -> str:
    return _workspace(admin_client, f"img-{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def member_client(server: LiveServer) -> Any:
    """An IAM user of the admin's project who is not its main account."""
    return server.client(server.create_user("imagemember"))


@pytest.fixture(scope="module")
def outsider_client(server: LiveServer) -> Any:
    """The main account of another project."""
    return server.client(server.create_user("imagestranger", project_id=uuid.uuid4().hex))


@pytest.fixture
def raw(server: LiveServer) -> Callable[..., httpx.Response]:
    """A request signed as the admin with a body sent verbatim, for bodies the SDK cannot send."""

    def send(method: str, path: str, body: Any = None) -> httpx.Response:
        creds = server.admin
        url = server.url + path.replace("{project_id}", creds["project_id"])
        content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        headers = sign(
            method, url, ak=creds["access_key"], sk=creds["secret_key"], project_id=creds["project_id"], body=content
        )
        return httpx.request(method, url, content=content or None, headers=headers, timeout=60)

    return send


# --- built-in images ---------------------------------------------------------------------------


def test_list_image_shows_the_built_in_catalogue(admin_client: Any) -> None:
    listed = admin_client.list_image(ListImageRequest())
    assert (listed.total, listed.current, listed.pages, listed.size) == (len(BUILT_INS), 1, 1, 200)
    assert {image.id for image in listed.data} == {image.id for image in BUILT_INS}
    for image in listed.data:
        assert {key for key, value in image.to_dict().items() if value is not None} >= IMAGE_FIELDS
        assert (image.type, image.status, image.visibility, image.workspace_id) == ("BUILD_IN", "ACTIVE", "PUBLIC", "0")
        assert image.dev_services == ["NOTEBOOK", "SSH"]
        assert image.arch in ("X86_64", "AARCH64")
        assert image.swr_path.endswith(f"/{image.namespace}/" + image.swr_path.rsplit("/", 1)[1])
        assert image.swr_path.endswith(":" + image.tag)
        assert set(image.resource_categories) <= {"CPU", "GPU"}
    seed = next(image for image in listed.data if image.id == SEED_IMAGE)
    assert (seed.name, seed.tag) == ("notebook2.0-mul-kernel-cpu-cp36", "3.3.2-release_v1")


def test_list_image_pages_sorts_and_filters(admin_client: Any) -> None:
    names = sorted(image.name for image in BUILT_INS)
    page = admin_client.list_image(ListImageRequest(limit=2, offset=2, sort_key="name", sort_dir="ASC"))
    assert [image.name for image in page.data] == names[2:4]
    assert (page.total, page.current, page.pages, page.size) == (len(BUILT_INS), 2, 2, 2)
    descending = admin_client.list_image(ListImageRequest(sort_key="name", sort_dir="DESC"))
    assert [image.name for image in descending.data] == names[::-1]
    fuzzy = admin_client.list_image(ListImageRequest(name="PyTorch"))
    assert [image.name for image in fuzzy.data] == ["pytorch1.8-cuda10.2-cudnn7-ubuntu18.04"]
    assert admin_client.list_image(ListImageRequest(name="pytorch", name_fuzzy_match=False)).total == 0
    exact = admin_client.list_image(
        ListImageRequest(name="pytorch1.8-cuda10.2-cudnn7-ubuntu18.04", name_fuzzy_match=False)
    )
    assert exact.total == 1
    assert admin_client.list_image(ListImageRequest(namespace="atelier")).total == len(BUILT_INS)
    assert admin_client.list_image(ListImageRequest(namespace="elsewhere")).total == 0
    assert admin_client.list_image(ListImageRequest(service_type="COMMON")).total == len(BUILT_INS)
    assert admin_client.list_image(ListImageRequest(service_type="INFERENCE")).total == 0
    assert admin_client.list_image(ListImageRequest(show_tag="3.3.2-release_v1")).data[0].id == SEED_IMAGE


def test_show_a_built_in_image(admin_client: Any, outsider_client: Any) -> None:
    for client in (admin_client, outsider_client):  # every project sees the catalogue
        shown = _show(client, SEED_IMAGE)
        assert (shown.id, shown.type, shown.status, shown.namespace) == (SEED_IMAGE, "BUILD_IN", "ACTIVE", "atelier")


def test_built_in_images_cannot_be_deleted_or_changed(admin_client: Any) -> None:
    error = _error(lambda: _delete(admin_client, SEED_IMAGE))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    assert "built-in" in error.error_msg
    group_id = BUILT_INS[0].group_id
    error = _error(lambda: admin_client.delete_image_group(DeleteImageGroupRequest(id=group_id)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    body = UpdateImageGroupRequestBody(read_me="mine now")
    error = _error(lambda: admin_client.update_image_group(UpdateImageGroupRequest(id=group_id, body=body)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    assert _show(admin_client, SEED_IMAGE).status == "ACTIVE"


def test_sync_of_a_built_in_image_answers_it(admin_client: Any) -> None:
    synced = admin_client.sync_image(SyncImageRequest(image_id=SEED_IMAGE))
    assert (synced.id, synced.status) == (SEED_IMAGE, "ACTIVE")


# --- registering -------------------------------------------------------------------------------


def test_register_the_servers_environment(admin_client: Any, workspace: str, tag: str) -> None:
    created = _register(
        admin_client,
        f"{SERVER_ENV}:{tag}",
        workspace_id=workspace,
        description="the server's venv",
        resource_category=["CPU"],
        services=["NOTEBOOK"],
        service_type="DEV",
        tags=["team=ml", "stage"],
        read_me="how to use it",
    )
    assert UUID4.match(created.id)
    expected = {
        "name": SERVER_ENV.name.lstrip(".").lower(),
        "namespace": "local",
        "tag": tag,
        "swr_path": f"{SERVER_ENV}:{tag}",
        "type": "DEDICATED",
        "origin": "CUSTOMIZE",
        "status": "ACTIVE",
        "visibility": "PRIVATE",
        "service_type": "DEV",
        "workspace_id": workspace,
        "description": "the server's venv",
        "dev_services": ["NOTEBOOK"],
        "resource_categories": ["CPU"],
    }
    assert {key: getattr(created, key) for key in expected} == expected
    assert created.arch in ("X86_64", "AARCH64")
    assert created.create_at == created.update_at > 0
    assert [tag.to_dict() for tag in created.tags] == [{"key": "team", "value": "ml"}, {"key": "stage", "value": ""}]

    shown = _show(admin_client, created.id)
    assert shown.to_json_object() == created.to_json_object()
    listed = _dedicated(admin_client, workspace)
    assert [image.id for image in listed.data] == [created.id]
    # The built-in list and other workspaces do not show it.
    assert created.id not in {image.id for image in admin_client.list_image(ListImageRequest()).data}
    assert created.id not in {image.id for image in _dedicated(admin_client, "0").data}


def test_register_defaults_and_an_interpreter_path(admin_client: Any, workspace: str) -> None:
    created = _register(admin_client, sys.executable, workspace_id=workspace)
    assert created.tag == "latest"
    assert created.swr_path == f"{sys.executable}:latest"
    assert created.name == SERVER_ENV.name.lstrip(".").lower()  # the environment's name, not "python"
    assert (created.visibility, created.origin, created.service_type) == ("PRIVATE", "CUSTOMIZE", "UNKNOWN")
    assert created.dev_services == ["NOTEBOOK", "SSH"]
    assert created.resource_categories == ["CPU", "GPU"]
    assert created.tags == []
    # The same environment and tag again: refused, it is already there.
    error = _error(lambda: _register(admin_client, f"{SERVER_ENV}/bin/python:latest", workspace_id=workspace))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    assert created.id in error.error_msg and "already registered" in error.error_msg


def test_an_environment_without_jupyter_is_refused(admin_client: Any, workspace: str, tmp_path: Path) -> None:
    venv = _bare_venv(tmp_path / "nojupyter")
    error = _error(lambda: _register(admin_client, str(venv), workspace_id=workspace))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    assert "jupyterlab" in error.error_msg and str(venv) in error.error_msg
    assert _dedicated(admin_client, workspace).total == 0


@pytest.mark.parametrize(
    ("swr_path", "words"),
    [
        ("swr.cn-north-4.myhuaweicloud.com/org/pytorch:1.8", "cannot pull container images"),
        ("org/pytorch:1.8", "cannot pull container images"),
        ("python3", "not an absolute path"),
        ("/definitely/not/here", "does not exist"),
        ("/tmp", "without bin/python"),
        (__file__, "not executable"),
        ("/opt/env:bad tag!", "tag"),
        ("/", "not a Python environment"),
        ("", "empty"),
    ],
)
def test_bad_swr_paths_are_refused(admin_client: Any, swr_path: str, words: str) -> None:
    error = _error(lambda: _register(admin_client, swr_path))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336"), error.error_msg
    assert words in error.error_msg


def test_bad_registration_bodies(
    admin_client: Any, workspace: str, tag: str, raw: Callable[..., httpx.Response]
) -> None:
    error = _error(lambda: admin_client.register_image(RegisterImageRequest(body=ImageRegRequest(description="x"))))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6335")
    assert "swr_path" in error.error_msg
    bad_fields: list[dict[str, Any]] = [
        {"arch": "SPARC"},
        {"service_type": "GAMES"},
        {"services": ["VNC"]},
        {"resource_category": ["TPU"]},
        {"visibility": "SECRET"},
        {"origin": "DOWNLOADED"},
        {"flavor_type": "ASCEND_X"},
        {"description": "x" * 513},
        {"tags": [{"key": ""}]},
    ]
    for fields in bad_fields:
        error = _error(partial(_register, admin_client, f"{SERVER_ENV}:{tag}", **fields))
        assert (error.status_code, error.error_code) == (400, "ModelArts.6336"), fields
    other_arch = "AARCH64" if _show(admin_client, SEED_IMAGE).arch == "X86_64" else "X86_64"
    error = _error(lambda: _register(admin_client, f"{SERVER_ENV}:{tag}", arch=other_arch, workspace_id=workspace))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    assert "runs on" in error.error_msg
    error = _error(lambda: _register(admin_client, f"{SERVER_ENV}:{tag}", workspace_id="f" * 32))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")
    error = _error(lambda: _register(admin_client, f"{SERVER_ENV}:{tag}", swr_instance_id="abc"))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")
    # Bodies the SDK cannot send: unknown fields, wrong JSON types, not JSON at all.
    for body in ({"swr_path": str(SERVER_ENV), "colour": "red"}, {"swr_path": 5}, b"{not json", [1, 2]):
        response = raw("POST", "/v1/{project_id}/images", body)
        assert response.status_code == 400, body
        assert response.json()["error_code"] == "ModelArts.6336"
    # The enum values are case-insensitive, and answered upper-case.
    response = raw(
        "POST",
        "/v1/{project_id}/images",
        {"swr_path": f"{SERVER_ENV}:{tag}", "workspace_id": workspace, "visibility": "public", "services": ["ssh"]},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["visibility"], response.json()["dev_services"]) == ("PUBLIC", ["SSH"])
    assert _dedicated(admin_client, workspace).total == 1


def test_bad_list_queries(admin_client: Any) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"sort_key": "colour"}, "ModelArts.6303"),
        ({"limit": 0}, "ModelArts.6336"),
        ({"offset": -1}, "ModelArts.6336"),
        ({"type": "SHARED"}, "ModelArts.6336"),
        ({"sort_dir": "SIDEWAYS"}, "ModelArts.6336"),
        ({"service_type": "GAMES"}, "ModelArts.6336"),
        ({"workspace_id": "f" * 32}, "ModelArts.7005"),
    ]
    for query, code in cases:
        error = _error(partial(admin_client.list_image, ListImageRequest(**query)))
        assert (error.status_code, error.error_code) == (400, code), query
    error = _error(lambda: admin_client.list_image_group(ListImageGroupRequest(limit=0)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.6336")


def test_unknown_ids_are_6797(admin_client: Any) -> None:
    unknown = str(uuid.uuid4())
    calls: list[Callable[[], Any]] = [
        lambda: _show(admin_client, unknown),
        lambda: _delete(admin_client, unknown),
        lambda: admin_client.sync_image(SyncImageRequest(image_id=unknown)),
        lambda: admin_client.delete_image_group(DeleteImageGroupRequest(id=unknown)),
        lambda: admin_client.update_image_group(
            UpdateImageGroupRequest(id=unknown, body=UpdateImageGroupRequestBody(read_me="x"))
        ),
    ]
    for call in calls:
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.6797")
        assert unknown in error.error_msg


# --- groups --------------------------------------------------------------------------------------


def test_image_groups(admin_client: Any, workspace: str) -> None:
    first = _register(admin_client, f"{SERVER_ENV}:v1", workspace_id=workspace, description="first", tags=["a=1"])
    second = _register(admin_client, f"{SERVER_ENV}:v2", workspace_id=workspace, description="second")
    name = first.name
    groups = _groups(admin_client, workspace, type="DEDICATED")
    assert (groups.total, groups.current, groups.pages) == (1, 1, 1)
    group = groups.data[0]
    assert (group.name, group.namespace, group.version_count, group.description) == (name, "local", 2, "first")
    assert UUID4.match(group.id)
    # Without a type the built-in groups come first; a name narrows both kinds.
    both = _groups(admin_client, workspace)
    assert both.total == len(BUILT_INS) + 1 and both.data[-1].id == group.id
    assert _groups(admin_client, workspace, name="pytorch").total == 1
    assert _groups(admin_client, workspace, type="BUILD_IN").total == len(BUILT_INS)
    assert _groups(admin_client, workspace, name=name, name_fuzzy_match=False, type="DEDICATED").total == 1
    tail = _groups(admin_client, workspace, limit=2, offset=len(BUILT_INS))
    assert [g.id for g in tail.data] == [group.id] and tail.current == 3
    assert group.id not in {g.id for g in _groups(admin_client, "0").data}  # groups live in one workspace

    # update: the guide and the tags of the whole group
    body = UpdateImageGroupRequestBody(
        read_me="# usage", tags=[UpdateImageGroupRequestBodyTags(key="team", value="vision")]
    )
    updated = admin_client.update_image_group(UpdateImageGroupRequest(id=group.id, body=body)).body
    assert (updated["id"], updated["read_me"], updated["version_count"]) == (group.id, "# usage", 2)
    assert updated["tags"] == [{"key": "team", "value": "vision"}]
    for image_id in (first.id, second.id):
        assert [t.to_dict() for t in _show(admin_client, image_id).tags] == [{"key": "team", "value": "vision"}]

    # deleting one version leaves the group with the other
    deleted = _delete(admin_client, first.id)
    assert (deleted.id, deleted.status) == (first.id, "DELETED")
    assert _error(lambda: _show(admin_client, first.id)).error_code == "ModelArts.6797"
    assert _groups(admin_client, workspace, type="DEDICATED").data[0].version_count == 1

    # deleting the group deletes every version
    third = _register(admin_client, f"{SERVER_ENV}:v3", workspace_id=workspace)
    body_force = DeleteImageGroupRequestBody(is_force=True)
    gone = admin_client.delete_image_group(DeleteImageGroupRequest(id=group.id, body=body_force)).body
    assert (gone["id"], gone["version_count"]) == (group.id, 2)
    for image_id in (second.id, third.id):
        assert _error(partial(_show, admin_client, image_id)).error_code == "ModelArts.6797"
    assert _groups(admin_client, workspace, type="DEDICATED").total == 0
    assert SERVER_ENV.is_dir()  # is_force never deletes the environment itself


def test_deleting_the_last_version_deletes_its_group(admin_client: Any, workspace: str) -> None:
    image = _register(admin_client, f"{SERVER_ENV}:only", workspace_id=workspace)
    assert _groups(admin_client, workspace, type="DEDICATED").total == 1
    _ = admin_client.delete_image(DeleteImageRequest(id=image.id, body=DeleteImageRequestBody(is_force=True)))
    assert _groups(admin_client, workspace, type="DEDICATED").total == 0


def test_bad_group_updates(admin_client: Any, workspace: str, raw: Callable[..., httpx.Response]) -> None:
    image = _register(admin_client, f"{SERVER_ENV}:upd", workspace_id=workspace)
    group_id = _groups(admin_client, workspace, type="DEDICATED").data[0].id
    path = "/v1/{project_id}/images/group/" + group_id
    for body in (
        {"read_me": 5},
        {"tags": [{"key": "k" * 129, "value": "v"}]},
        {"tags": [{"key": f"k{i}", "value": "v"} for i in range(21)]},
        {"colour": "red"},
    ):
        response = raw("PUT", path, body)
        assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.6336"), body
    assert _delete(admin_client, image.id).status == "DELETED"


# --- sync ----------------------------------------------------------------------------------------


def test_sync_follows_the_environment(admin_client: Any, workspace: str, tmp_path: Path) -> None:
    venv = _bare_venv(tmp_path / "flaky")
    pth = _lend_jupyter(venv)
    image = _register(admin_client, f"{venv}:v1", workspace_id=workspace)
    assert (image.status, image.name) == ("ACTIVE", "flaky")

    pth.unlink()  # JupyterLab goes away
    synced = admin_client.sync_image(SyncImageRequest(image_id=image.id))
    assert synced.status == "ERROR"
    assert "jupyterlab" in synced.status_message
    assert synced.update_at >= image.update_at
    assert _show(admin_client, image.id).status == "ERROR"

    _lend_jupyter(venv)  # and comes back
    synced = admin_client.sync_image(SyncImageRequest(image_id=image.id))
    assert (synced.status, synced.status_message) == ("ACTIVE", "")
    assert _delete(admin_client, image.id).status == "DELETED"


# --- who may see what ----------------------------------------------------------------------------


@pytest.fixture
def private_image(admin_client: Any) -> Iterator[tuple[str, Any]]:
    workspace_id = _workspace(admin_client, f"imgp-{uuid.uuid4().hex[:10]}", "PRIVATE")
    image = _register(admin_client, f"{SERVER_ENV}:private", workspace_id=workspace_id)
    yield workspace_id, image
    _delete(admin_client, image.id)


def test_a_private_workspace_hides_its_images(member_client: Any, private_image: tuple[str, Any]) -> None:
    workspace_id, image = private_image
    calls: list[Callable[[], Any]] = [
        lambda: _groups(member_client, workspace_id),
        lambda: _show(member_client, image.id),
        lambda: _delete(member_client, image.id),
        lambda: member_client.sync_image(SyncImageRequest(image_id=image.id)),
        lambda: _dedicated(member_client, workspace_id),
        lambda: _register(member_client, f"{SERVER_ENV}:mine", workspace_id=workspace_id),
    ]
    for call in calls:
        error = _error(call)
        assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    # The member still sees the catalogue and the default workspace.
    assert member_client.list_image(ListImageRequest()).total == len(BUILT_INS)


def test_group_calls_in_a_private_workspace_are_refused_to_a_member(
    admin_client: Any, member_client: Any, private_image: tuple[str, Any]
) -> None:
    workspace_id, _ = private_image
    group_id = _groups(admin_client, workspace_id, type="DEDICATED").data[0].id
    body = UpdateImageGroupRequestBody(read_me="x")
    for call in (
        lambda: member_client.update_image_group(UpdateImageGroupRequest(id=group_id, body=body)),
        lambda: member_client.delete_image_group(DeleteImageGroupRequest(id=group_id)),
    ):
        error = _error(call)
        assert (error.status_code, error.error_code) == (403, "ModelArts.0112")


def test_other_projects_never_see_registered_images(outsider_client: Any, private_image: tuple[str, Any]) -> None:
    _, image = private_image
    for call in (
        lambda: _show(outsider_client, image.id),
        lambda: _delete(outsider_client, image.id),
        lambda: outsider_client.sync_image(SyncImageRequest(image_id=image.id)),
    ):
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.6797")
    assert _dedicated(outsider_client, "0").total == 0


def test_a_workspace_holding_images_cannot_be_deleted(admin_client: Any, workspace: str) -> None:
    from huaweicloudsdkmodelarts.v1 import DeleteWorkspaceRequest

    image = _register(admin_client, f"{SERVER_ENV}:held", workspace_id=workspace)
    error = _error(lambda: admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7004")
    assert "notebook images" in error.error_msg
    _delete(admin_client, image.id)
    admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace))
