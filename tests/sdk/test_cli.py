"""``openarts user create`` works on the live server's data while it runs."""

from __future__ import annotations

import json
import os
import stat
import uuid

from huaweicloudsdkmodelarts.v1 import ListUsersRequest, ListWorkspaceRequest

from tests.support.server import LiveServer

FIELDS = {"user_id", "user_name", "domain_id", "domain_name", "project_id", "access_key", "secret_key"}


def test_user_create_prints_one_json_object(server: LiveServer) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    result = server.cli("user", "create", name, "--password", "pw-123456")
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    assert set(created) == FIELDS
    assert created["user_name"] == name
    assert created["project_id"] == server.admin["project_id"]
    client = server.client(created)
    assert name in [u.user_name for u in client.list_users(ListUsersRequest()).users]


def test_user_create_with_a_new_project_founds_an_account(server: LiveServer) -> None:
    project_id = uuid.uuid4().hex
    result = server.cli("user", "create", f"boss-{project_id[:6]}", "--project-id", project_id)
    created = json.loads(result.stdout)
    assert created["project_id"] == project_id
    assert created["domain_id"] != server.admin["domain_id"]
    workspaces = server.client(created).list_workspace(ListWorkspaceRequest()).workspaces
    assert [w.id for w in workspaces] == ["0"]


def test_user_create_refuses_duplicates_and_bad_names(server: LiveServer) -> None:
    duplicate = server.cli("user", "create", "admin")
    assert duplicate.returncode != 0
    assert "already exists" in duplicate.stderr
    bad = server.cli("user", "create", "bad name;rm")
    assert bad.returncode != 0


def test_admin_credentials_file_is_private(server: LiveServer) -> None:
    path = server.data_dir / "admin-credentials.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(server.data_dir).st_mode) == 0o700
    creds = json.loads(path.read_text())
    assert set(creds) >= FIELDS
