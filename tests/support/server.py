"""A real OpenArts server in a subprocess, and the official SDK pointed at it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkmodelarts.v1 import ModelArtsClient

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sdk_client(endpoint: str, creds: dict[str, Any]) -> Any:
    credentials = BasicCredentials(creds["access_key"], creds["secret_key"], creds["project_id"])
    return ModelArtsClient.new_builder().with_credentials(credentials).with_endpoint(endpoint).build()


class LiveServer:
    """``openarts serve`` on a free port over its own data directory and database."""

    def __init__(self, data_dir: Path, database_url: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "OPENARTS_DATA_DIR": str(data_dir),
            "OPENARTS_DATABASE_URL": database_url,
            **(env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"server-{self.port}.log"  # stderr: the server's log
        self.stdout_path = data_dir.parent / f"server-{self.port}.out"  # stdout: what it tells its operator
        self._users = 0

    def start(self, timeout: float = 60.0) -> None:
        with open(self.log_path, "ab") as log, open(self.stdout_path, "ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "openarts"), "serve", "--port", str(self.port), "--log-level", "info"],
                env=self.env,
                stdout=out,
                stderr=log,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.stdout()}\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not become healthy:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    @property
    def admin(self) -> dict[str, Any]:
        creds: dict[str, Any] = json.loads((self.data_dir / "admin-credentials.json").read_text())
        return creds

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "openarts"), *args], env=self.env, capture_output=True, text=True, timeout=120, check=False
        )

    def create_user(self, prefix: str = "user", **options: Any) -> dict[str, Any]:
        """``openarts user create`` through the real CLI, while the server runs."""
        self._users += 1
        args = ["user", "create", f"{prefix}-{os.getpid()}-{self._users}"]
        for key, value in options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                args.append(flag)
            elif value is not None:
                args += [flag, str(value)]
        result = self.cli(*args)
        if result.returncode != 0:
            raise RuntimeError(f"user create failed: {result.stderr}")
        created: dict[str, Any] = json.loads(result.stdout)
        return created

    def client(self, creds: dict[str, Any] | None = None) -> Any:
        return sdk_client(self.url, creds or self.admin)


@contextmanager
def own_server(
    url: str,
    folder: Path,
    *,
    cpus: int,
    memory_gb: int,
    clean_up: Callable[[LiveServer], object],
    kill_leftovers: Callable[[Path], object],
    env: dict[str, str] | None = None,
) -> Iterator[LiveServer]:
    """A live server with a capacity pool of its own, for tests whose long-running processes (notebooks,
    model servers) must not hold up the session server's jobs. ``clean_up`` ends that work through the API
    before the server stops; ``kill_leftovers`` is the last resort for anything that outlived it."""
    pool = {"OPENARTS_COMPUTE_CPUS": str(cpus), "OPENARTS_COMPUTE_MEMORY_GB": str(memory_gb)}
    live = LiveServer(folder / "data", url, env={**pool, **(env or {})})
    live.start()
    try:
        yield live
    finally:
        try:
            clean_up(live)
        finally:
            live.stop()
            kill_leftovers(live.data_dir)
