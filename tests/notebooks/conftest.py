"""Fixtures of the notebook tests.

Instances run on a server of their own (``notebook_server``), with a capacity pool of four CPUs: a
notebook holds its flavor's CPUs while it runs, and on the shared session server (two CPUs) one
instance would hold up every training test behind it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.notebooks.notebook_support import kill_leftovers, stop_and_delete_all
from tests.support.databases import fresh_database
from tests.support.server import LiveServer, own_server

NOTEBOOK_CPUS = 4


@pytest.fixture(scope="session")
def notebook_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp(f"notebook-server-{backend}")
    with (
        fresh_database(backend, folder) as url,
        own_server(
            url,
            folder,
            cpus=NOTEBOOK_CPUS,
            memory_gb=32,
            clean_up=lambda live: stop_and_delete_all(live.client()),  # no Jupyter server or kernel may remain
            kill_leftovers=kill_leftovers,
        ) as live,
    ):
        yield live


@pytest.fixture(scope="session")
def nb_client(notebook_server: LiveServer) -> Any:
    return notebook_server.client()


@pytest.fixture(scope="session")
def nb_member(notebook_server: LiveServer) -> dict[str, Any]:
    """An IAM user of the admin's project who is not its main account."""
    return notebook_server.create_user("coder")


@pytest.fixture(scope="session")
def nb_member_client(notebook_server: LiveServer, nb_member: dict[str, Any]) -> Any:
    return notebook_server.client(nb_member)


@pytest.fixture
def unique() -> Callable[[str], str]:
    tag = uuid.uuid4().hex[:8]
    return lambda prefix: f"{prefix}-{tag}"
