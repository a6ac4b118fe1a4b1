"""Fixtures of the service tests: a live server of their own (a 2-CPU pool, as the session server's) so
instances never hold up training tests, and nothing left running after the tests."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.services.support import Api, delete_all_services, kill_leftovers
from tests.support.databases import fresh_database
from tests.support.server import LiveServer, own_server


@pytest.fixture(scope="session")
def service_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp(f"service-server-{backend}")
    with (
        fresh_database(backend, folder) as url,
        own_server(
            url,
            folder,
            cpus=2,
            memory_gb=16,
            clean_up=lambda live: delete_all_services(Api(live)),  # no model server may outlive the tests
            kill_leftovers=kill_leftovers,
        ) as live,
    ):
        yield live


@pytest.fixture(scope="session")
def api(service_server: LiveServer) -> Api:
    return Api(service_server)


@pytest.fixture
def unique() -> Callable[[str], str]:
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"


@pytest.fixture
def cleanup(api: Api) -> Iterator[list[str]]:
    """Service ids a test deploys; deleted (and waited for) when the test ends, pass or fail."""
    created: list[str] = []
    yield created
    if created:
        api.call("DELETE", "/v1/{project_id}/services/" + ",".join(created))


@pytest.fixture(scope="session")
def member(service_server: LiveServer) -> dict[str, Any]:
    return service_server.create_user("svc-member")
