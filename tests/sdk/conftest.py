from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tests.support.server import LiveServer


@pytest.fixture
def unique() -> Callable[[str], str]:
    """Names no other test uses, so tests can share one server."""
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"


@pytest.fixture(scope="session")
def member(server: LiveServer) -> dict[str, Any]:
    """An IAM user of the admin's project who is not its main account."""
    return server.create_user("member")


@pytest.fixture(scope="session")
def member_client(server: LiveServer, member: dict[str, Any]) -> Any:
    return server.client(member)


@pytest.fixture(scope="session")
def outsider(server: LiveServer) -> dict[str, Any]:
    """The main account of another domain and project."""
    return server.create_user("outsider", project_id=uuid.uuid4().hex)
