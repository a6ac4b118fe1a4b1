"""Fixtures of the training SDK tests: unique names, a second user of the admin's project, a user of
another project, and raw signed requests for bodies the SDK cannot send."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.server import LiveServer
from tests.support.signing import sign

Raw = Callable[..., httpx.Response]


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses, so tests can share one server."""
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"


@pytest.fixture(scope="session")
def member(server: LiveServer) -> dict[str, Any]:
    """An IAM user of the admin's project who is not its main account."""
    return server.create_user("trainee")


@pytest.fixture(scope="session")
def member_client(server: LiveServer, member: dict[str, Any]) -> Any:
    return server.client(member)


@pytest.fixture(scope="session")
def outsider(server: LiveServer) -> dict[str, Any]:
    """The main account of another domain and project."""
    return server.create_user("stranger", project_id=uuid.uuid4().hex)


@pytest.fixture(scope="session")
def outsider_client(server: LiveServer, outsider: dict[str, Any]) -> Any:
    return server.client(outsider)


@pytest.fixture
def raw(server: LiveServer) -> Raw:
    """``raw(method, "/v2/{project_id}/...", body)``: a request signed as the admin, body sent verbatim
    (a dict is JSON-encoded with the SDK's spacing, bytes go as they are)."""

    def send(method: str, path: str, body: Any = None) -> httpx.Response:
        creds = server.admin
        url = server.url + path.replace("{project_id}", creds["project_id"])
        content = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else b"")
        headers = sign(
            method,
            url,
            ak=creds["access_key"],
            sk=creds["secret_key"],
            project_id=creds["project_id"],
            body=content,
        )
        return httpx.request(method, url, content=content or None, headers=headers, timeout=10)

    return send
