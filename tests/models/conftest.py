"""Model registry tests run on the session server: publishing a model starts no process."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from tests.services.support import Api
from tests.support.server import LiveServer


@pytest.fixture(scope="session")
def api(server: LiveServer) -> Api:
    return Api(server)


@pytest.fixture
def unique() -> Callable[[str], str]:
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"
