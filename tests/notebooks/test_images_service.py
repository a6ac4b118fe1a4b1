"""What the notebooks family reads from images (``runtime_of``, ``image_view``, ``IN_USE_CHECKS``), in
process over a real database, and the swr_path grammar on its own."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from openarts.core.errors import ApiError
from openarts.notebooks.images import catalogue, environments, service
from openarts.notebooks.images.tables import Image
from tests.conftest import InProcess

SEED_IMAGE = "e1a07296-22a8-4f05-8bc8-e936c8e54090"
SERVER_ENV = Path(sys.executable).parent.parent


def _register(inprocess: InProcess, swr_path: str) -> dict[str, Any]:
    project_id = inprocess.admin["project_id"]
    response = inprocess.signed("POST", f"/v1/{project_id}/images", body={"swr_path": swr_path})
    assert response.status_code == 200, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.fixture
def in_use() -> Iterator[set[str]]:
    """Image ids a stand-in for the notebooks family reports as used (it is not written yet here)."""
    used: set[str] = set()

    def check(_session: Any, image_id: str) -> bool:
        return image_id in used

    service.IN_USE_CHECKS.append(check)
    try:
        yield used
    finally:
        service.IN_USE_CHECKS.remove(check)


def test_runtime_and_view_of_a_built_in_image(inprocess: InProcess) -> None:
    project_id = inprocess.admin["project_id"]
    with inprocess.db.read() as session:
        runtime = service.runtime_of(session, project_id, SEED_IMAGE)
        view = service.image_view(session, project_id, SEED_IMAGE)
        other_project = service.runtime_of(session, uuid.uuid4().hex, SEED_IMAGE)
    assert runtime is not None and other_project == runtime
    assert (runtime.python, runtime.type, runtime.workspace_id) == (sys.executable, "BUILD_IN", "0")
    assert (runtime.name, runtime.tag) == ("notebook2.0-mul-kernel-cpu-cp36", "3.3.2-release_v1")
    assert runtime.jupyterlab_version and runtime.jupyter_server_version and runtime.python_version
    assert (runtime.dev_services, runtime.resource_categories) == (("NOTEBOOK", "SSH"), ("CPU",))
    assert view is not None
    assert (view["id"], view["type"], view["status"], view["swr_path"]) == (
        SEED_IMAGE,
        "BUILD_IN",
        "ACTIVE",
        runtime.swr_path,
    )


def test_runtime_and_view_of_a_registered_image(inprocess: InProcess) -> None:
    project_id = inprocess.admin["project_id"]
    created = _register(inprocess, f"{SERVER_ENV}:rt")
    with inprocess.db.read() as session:
        runtime = service.runtime_of(session, project_id, created["id"])
        view = service.image_view(session, project_id, created["id"])
        assert service.runtime_of(session, uuid.uuid4().hex, created["id"]) is None  # another project
        assert service.image_view(session, project_id, str(uuid.uuid4())) is None
    assert runtime is not None
    assert runtime.python == str(SERVER_ENV / "bin" / "python")
    assert (runtime.type, runtime.tag, runtime.workspace_id, runtime.swr_path) == (
        "DEDICATED",
        "rt",
        "0",
        f"{SERVER_ENV}:rt",
    )
    assert runtime.jupyterlab_version == catalogue.server_environment().jupyterlab_version
    assert (runtime.dev_services, runtime.resource_categories) == (("NOTEBOOK", "SSH"), ("CPU", "GPU"))
    assert view == created

    # An image whose environment broke still shows, but no notebook can run it.
    with inprocess.db.write() as session:
        session.execute(update(Image).where(Image.id == created["id"]).values(status="ERROR"))
    with inprocess.db.read() as session:
        assert service.runtime_of(session, project_id, created["id"]) is None
        view = service.image_view(session, project_id, created["id"])
    assert view is not None and view["status"] == "ERROR"


def test_an_image_in_use_cannot_be_deleted(inprocess: InProcess, in_use: set[str]) -> None:
    project_id = inprocess.admin["project_id"]
    first = _register(inprocess, f"{SERVER_ENV}:used")
    second = _register(inprocess, f"{SERVER_ENV}:spare")
    in_use.add(first["id"])

    response = inprocess.signed("DELETE", f"/v1/{project_id}/images/{first['id']}")
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.6347"
    assert "in use" in response.json()["error_msg"]

    groups = inprocess.signed("GET", f"/v1/{project_id}/images/group?type=DEDICATED").json()["data"]
    group_id = groups[0]["id"]
    response = inprocess.signed("DELETE", f"/v1/{project_id}/images/group/{group_id}")
    assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.6347")
    # Nothing of the group went: the spare version is still there too.
    assert inprocess.signed("GET", f"/v1/{project_id}/images/{second['id']}").status_code == 200

    in_use.clear()
    response = inprocess.signed("DELETE", f"/v1/{project_id}/images/group/{group_id}")
    assert response.status_code == 200, response.text
    assert response.json()["version_count"] == 2
    for image in (first, second):
        response = inprocess.signed("GET", f"/v1/{project_id}/images/{image['id']}")
        assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.6797")


def test_the_in_use_check_is_asked_about_built_ins_never(inprocess: InProcess, in_use: set[str]) -> None:
    """Built-ins are refused before any check runs, so a check need not know them."""
    in_use.add(SEED_IMAGE)
    project_id = inprocess.admin["project_id"]
    response = inprocess.signed("DELETE", f"/v1/{project_id}/images/{SEED_IMAGE}")
    assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.6336")


@pytest.mark.parametrize(
    ("swr_path", "location", "name", "tag"),
    [
        ("/opt/envs/torch2", "/opt/envs/torch2", "torch2", "latest"),
        ("/opt/envs/torch2/:v1", "/opt/envs/torch2", "torch2", "v1"),
        ("/opt/envs/Torch 2.1/bin/python3.11:2024.01", "/opt/envs/Torch 2.1/bin/python3.11", "torch-2.1", "2024.01"),
        ("/home/me/project/.venv", "/home/me/project/.venv", "venv", "latest"),
        ("/usr/bin/python3", "/usr/bin/python3", "usr", "latest"),
        ("/opt//envs/../envs/x", "/opt/envs/x", "x", "latest"),
    ],
)
def test_swr_path_grammar(swr_path: str, location: str, name: str, tag: str) -> None:
    ref = environments.parse_swr_path(swr_path)
    assert (ref.location, ref.name, ref.tag, ref.namespace) == (location, name, tag, "local")
    assert ref.swr_path == f"{location}:{tag}"


@pytest.mark.parametrize("swr_path", ["swr.cn-north-4.myhuaweicloud.com/ns/img:1", "ns/img", "img:1", "x" * 3000])
def test_swr_path_grammar_refusals(swr_path: str) -> None:
    with pytest.raises(ApiError) as caught:
        environments.parse_swr_path(swr_path)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.6336")


def test_machine_arch() -> None:
    assert [catalogue.machine_arch(m) for m in ("x86_64", "AMD64", "aarch64", "arm64", "riscv64")] == [
        "X86_64",
        "X86_64",
        "AARCH64",
        "AARCH64",
        "RISCV64",
    ]


def test_inspect_reports_what_it_found(tmp_path: Path) -> None:
    found = environments.inspect(str(SERVER_ENV))
    assert found.ok and found.python == str(SERVER_ENV / "bin" / "python")
    assert found.python_version == catalogue.server_environment().python_version
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\nsleep 5\n")
    script.chmod(0o755)
    slow = environments.inspect(str(script), timeout_s=0.5)
    assert not slow.ok and "did not answer" in slow.reason
    script.write_text("#!/bin/sh\necho not json\n")
    silent = environments.inspect(str(script))
    assert not silent.ok and "did not report" in silent.reason
