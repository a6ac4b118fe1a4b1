"""Signatures and tokens on the wire, against the live server."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import ListWorkspaceRequest

from tests.support.server import LiveServer, sdk_client
from tests.support.signing import sign


def _send(server: LiveServer, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> httpx.Response:
    return httpx.request(method, server.url + path, headers=headers, content=body or None, timeout=10)


def _signed(server: LiveServer, method: str, path: str, body: bytes = b"", **options: Any) -> dict[str, str]:
    creds = server.admin
    return sign(
        method,
        server.url + path,
        ak=creds["access_key"],
        sk=creds["secret_key"],
        project_id=creds["project_id"],
        body=body,
        **options,
    )


def _assert_refused(response: httpx.Response, reason: str) -> None:
    assert response.status_code == 401, response.text
    payload = response.json()
    assert payload["error_code"] == "APIGW.0301"
    assert reason in payload["error_msg"]
    assert payload["request_id"] == response.headers["x-request-id"]


def test_a_signed_request_passes(server: LiveServer) -> None:
    path = f"/v1/{server.admin['project_id']}/workspaces?limit=5"
    assert _send(server, "GET", path, _signed(server, "GET", path)).status_code == 200


def test_tampered_signature(server: LiveServer) -> None:
    path = f"/v1/{server.admin['project_id']}/workspaces"
    headers = _signed(server, "GET", path)
    signature = headers["Authorization"][-64:]
    flipped = ("0" if signature[0] != "0" else "1") + signature[1:]
    headers["Authorization"] = headers["Authorization"][:-64] + flipped
    _assert_refused(_send(server, "GET", path, headers), "verify aksk signature fail")


def test_stale_sdk_date(server: LiveServer) -> None:
    path = f"/v1/{server.admin['project_id']}/workspaces"
    stale = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() - 16 * 60))
    _assert_refused(_send(server, "GET", path, _signed(server, "GET", path, sdk_date=stale)), "signature expired")


def test_body_changed_after_signing(server: LiveServer) -> None:
    path = f"/v1/{server.admin['project_id']}/workspaces"
    body = json.dumps({"name": "signed-name"}).encode()
    headers = _signed(server, "POST", path, body)
    changed = json.dumps({"name": "other-name"}).encode()
    _assert_refused(_send(server, "POST", path, headers, changed), "verify aksk signature fail")


def test_query_changed_after_signing(server: LiveServer) -> None:
    path = f"/v1/{server.admin['project_id']}/workspaces?limit=5"
    headers = _signed(server, "GET", path)
    _assert_refused(_send(server, "GET", path.replace("5", "6"), headers), "verify aksk signature fail")


def test_unknown_access_key(server: LiveServer) -> None:
    creds = {**server.admin, "access_key": "NOSUCHACCESSKEY00000"}
    with pytest.raises(ClientRequestException) as caught:
        sdk_client(server.url, creds).list_workspace(ListWorkspaceRequest())
    assert (caught.value.status_code, caught.value.error_code) == (401, "APIGW.0301")


def test_wrong_secret_key(server: LiveServer) -> None:
    creds = {**server.admin, "secret_key": "x" * 40}
    with pytest.raises(ClientRequestException) as caught:
        sdk_client(server.url, creds).list_workspace(ListWorkspaceRequest())
    assert caught.value.status_code == 401


def test_token_from_iam_endpoint_works_on_the_wire(server: LiveServer) -> None:
    admin = server.admin
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": "admin", "password": admin["password"]}},
            },
            "scope": {"project": {"id": admin["project_id"]}},
        }
    }
    issued = httpx.post(server.url + "/v3/auth/tokens", json=body, timeout=10)
    assert issued.status_code == 201
    token = issued.headers["x-subject-token"]
    listed = httpx.get(f"{server.url}/v1/{admin['project_id']}/workspaces", headers={"X-Auth-Token": token})
    assert listed.status_code == 200
    assert listed.json()["total_count"] >= 1


def test_secrets_never_reach_the_log(server: LiveServer) -> None:
    """The first start shows the admin's secret key once to its operator, and never logs it."""
    everything = server.stdout() + server.log()
    assert "GET /v1/" in everything  # the access log is on, so the checks below mean something
    assert everything.count(server.admin["secret_key"]) == 1
    assert server.admin["password"] not in everything
