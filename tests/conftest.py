from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from openarts.app import create_app
from openarts.bootstrap import ensure_admin
from openarts.config import Settings
from openarts.core.clock import FakeClock
from openarts.core.db import Database
from openarts.core.identity import service as identity
from tests.support.databases import BACKENDS, fresh_database
from tests.support.executors import on_ray, ray_server_env, started_ray_cluster
from tests.support.server import LiveServer
from tests.support.signing import sign

TEST_TOPIC = "urn:smn:local:0:workflow-events"


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def server_ray_address() -> Iterator[str]:
    """With ``OPENARTS_TEST_EXECUTOR=ray``: a Ray cluster on this machine, token authentication on, for the
    session servers' jobs (one for the session, whatever the backends); its dashboard address.

    One node: on a second node of the same machine, Ray's dashboard agent attaches to the head node (Ray
    prefers the head among a host's raylets) and serves the head's copy of a job's driver log, so a job whose
    driver ran there would show only Ray's first line. Jobs over several nodes are tests/ray's business."""
    try:
        import ray  # noqa: F401
    except ImportError as missing:  # asked for Ray: a run that skipped everything would prove nothing
        raise RuntimeError("OPENARTS_TEST_EXECUTOR=ray needs Ray: pip install -e '.[ray]'") from missing
    with started_ray_cluster(nodes=1) as cluster:
        yield cluster.address


def _executor_env(request: pytest.FixtureRequest) -> dict[str, str]:
    """The session server's executor settings: none for the local executor (the default)."""
    if not on_ray():
        return {}
    address: str = request.getfixturevalue("server_ray_address")
    return ray_server_env(address)


@pytest.fixture(scope="session")
def server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[LiveServer]:
    """One live server per backend for the whole session; tests keep to their own workspaces. Its jobs run
    as local processes, or on a Ray cluster with ``OPENARTS_TEST_EXECUTOR=ray`` (tests/support/executors.py)."""
    executor_env = _executor_env(request)
    folder = tmp_path_factory.mktemp(f"server-{backend}")
    with fresh_database(backend, folder) as url:
        # Two CPUs for jobs whatever the machine: a 2u job at a time, so queueing is deterministic.
        env = {
            "OPENARTS_MAX_WORKSPACES": "1000",
            "OPENARTS_COMPUTE_CPUS": "2",
            "OPENARTS_COMPUTE_MEMORY_GB": "32",
            # A topic for workflow subscriptions; nothing listens there (deliveries are recorded as failed).
            "OPENARTS_WORKFLOW_WEBHOOKS": json.dumps({TEST_TOPIC: "http://127.0.0.1:9/workflow-events"}),
            **executor_env,
        }
        live = LiveServer(folder / "data", url, env=env)
        live.start()
        try:
            yield live
        finally:
            live.stop()


@pytest.fixture(scope="session")
def admin_client(server: LiveServer) -> Any:
    return server.client()


class InProcess:
    """The app in this process over a real database, with a clock the test moves."""

    def __init__(self, settings: Settings, db: Database, clock: FakeClock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self.app = create_app(settings, db=db, clock=clock)
        self.http = TestClient(self.app, raise_server_exceptions=False)
        admin = ensure_admin(settings, db, clock)
        assert admin is not None
        self.admin: dict[str, Any] = admin

    def signed(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        creds: dict[str, Any] | None = None,
        sdk_date: str | None = None,
    ) -> httpx.Response:
        """A request signed as the SDK signs it (JSON bodies with json.dumps' default spacing)."""
        creds = creds or self.admin
        raw = json.dumps(body).encode() if body is not None else b""
        url = "http://testserver" + path
        headers = sign(
            method,
            url,
            ak=creds["access_key"],
            sk=creds["secret_key"],
            project_id=creds["project_id"],
            body=raw,
            sdk_date=sdk_date or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock.now())),
        )
        return self.http.request(method, url, content=raw or None, headers=headers)

    def create_user(self, name: str, **options: Any) -> dict[str, Any]:
        with self.db.write() as session:
            return identity.create_user(session, self.clock, self.settings.region, name, **options)


@pytest.fixture
def inprocess(backend: str, tmp_path: Path) -> Iterator[InProcess]:
    with fresh_database(backend, tmp_path) as url:
        settings = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path / "data"), "OPENARTS_DATABASE_URL": url})
        settings.ensure_data_dir()
        db = Database(url)
        db.migrate()
        try:
            yield InProcess(settings, db, FakeClock())
        finally:
            db.dispose()
