"""Every route refuses a caller without credentials, whatever the method.

The routes are read from the app itself, so a route added later without authentication fails here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from openarts.app import create_app
from openarts.config import Settings
from tests.conftest import InProcess

PUBLIC = {("GET", "/health"), ("POST", "/v3/auth/tokens")}
# A notebook instance's JupyterLab is reached with the instance's own token, not IAM credentials (see
# notebooks/proxy.py and tests/notebooks/test_proxy.py): without it, nothing gets through.
TOKEN_AUTHENTICATED = "/authoring/"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def iter_routes(routes: list[Any]) -> Iterator[tuple[str, set[str]]]:
    """(path, methods) of every route, descending into included routers and mounts."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            yield from iter_routes(original.routes)
        elif hasattr(route, "routes") and not hasattr(route, "methods"):
            yield from iter_routes(route.routes)
        else:
            yield route.path, set(getattr(route, "methods", None) or [])


def _concrete(path: str, project_id: str) -> str:
    path = path.replace("{project_id}", project_id)
    return re.sub(r"\{[^}]+\}", "x1", path)


def test_the_inventory_sees_every_family() -> None:
    app: FastAPI = create_app(Settings.from_env({"OPENARTS_DATA_DIR": "/nonexistent"}))
    paths = {path for path, _ in iter_routes(app.routes)}
    assert "/v1/{project_id}/workspaces/{workspace_id}/quotas" in paths
    assert "/health" in paths
    assert "/v3/auth/tokens" in paths


def test_no_route_accepts_an_anonymous_caller(inprocess: InProcess) -> None:
    project_id = inprocess.admin["project_id"]
    checked = 0
    for path, methods in iter_routes(inprocess.app.routes):
        url = _concrete(path, project_id)
        for method in METHODS:
            response = inprocess.http.request(method, url, content=b"{}")
            if (method, path) in PUBLIC:
                continue
            assert response.status_code < 200 or response.status_code >= 300, (method, path)
            if path.startswith(TOKEN_AUTHENTICATED):
                assert response.status_code in (403, 404), (method, path, response.text)
            elif method in methods:
                assert response.status_code == 401, (method, path, response.text)
                assert response.json()["error_code"] == "APIGW.0301"
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Auth-Token": "not-a-token"},
        {"Authorization": "Bearer abc"},
        {"Authorization": "SDK-HMAC-SHA256 Access=NOPE, SignedHeaders=host;x-sdk-date, Signature=00"},
    ],
)
def test_bad_credentials_are_401(inprocess: InProcess, headers: dict[str, str]) -> None:
    project_id = inprocess.admin["project_id"]
    response = inprocess.http.get(f"/v1/{project_id}/workspaces", headers=headers)
    assert response.status_code == 401
    assert response.json()["error_code"] == "APIGW.0301"
