"""Throughput of a signed ``GET /v1/{project_id}/workspaces`` on OpenArts, relative to a bare FastAPI app.

What is measured
----------------
The real OpenArts server (``openarts serve``: Uvicorn, one worker, default settings, a fresh SQLite data
directory) holds ten workspaces in the admin's project. One request listing them is signed once with the
official SDK's ``SDK-HMAC-SHA256`` signer and then replayed: the signature stays valid for 15 minutes and
the server accepts replays, so the load generator pays nothing for signing. The server, however, pays
for everything a real call costs: the request-id middleware, parsing and checking the signature, looking
up the access key, querying and serialising the ten workspaces.

The baseline is a bare FastAPI app on the same Uvicorn (one worker, default settings) serving the same
path with the exact JSON body OpenArts returned, straight from memory and without authentication. It is
the ceiling of the stack: whatever OpenArts loses against it is OpenArts' own work.

The load generator keeps ``--concurrency`` (default 8) persistent HTTP/1.1 keep-alive connections, each
sending the same pre-signed request back-to-back (identical bytes to both targets). It is written on
plain asyncio streams, parses responses by ``Content-Length``, and counts 200s as successes and
anything else as errors. Each measurement runs 1 s of warm-up followed by ``--seconds`` of counting;
``--rounds`` rounds measure both targets, alternating which goes first, and the medians are reported.

Why
---
The target is ``openarts / bare >= 0.5``: a signed, database-backed list of ten workspaces should reach
at least half the throughput of the framework serving a constant. The script only reports the ratio;
it exits non-zero only when a server fails to start or a request fails.

Usage: ``python bench/api_throughput.py [--seconds 5] [--rounds 3] [--concurrency 8]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdkmodelarts.v1 import (
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    ModelArtsClient,
)

HOST = "127.0.0.1"
WORKSPACES_TOTAL = 10  # including the default workspace "0" that every project starts with
WARMUP_S = 1.0
STARTUP_TIMEOUT_S = 60.0
TARGET_RATIO = 0.5

BARE_APP_SOURCE = '''\
"""Bare FastAPI baseline: the OpenArts response body, from memory, no auth."""

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response

BODY = Path(__file__).with_name("body.json").read_bytes()
app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/v1/{project_id}/workspaces")
async def list_workspace(project_id: str) -> Response:
    return Response(content=BODY, media_type="application/json")
'''


class BenchError(RuntimeError):
    """A setup step failed: a server did not start or answered wrongly."""


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    stderr_path: Path


@dataclass(frozen=True)
class Credentials:
    project_id: str
    access_key: str
    secret_key: str


@dataclass(frozen=True)
class SignedRequest:
    path: str
    headers: dict[str, str]

    def wire_bytes(self) -> bytes:
        lines = [f"GET {self.path} HTTP/1.1", *(f"{k}: {v}" for k, v in self.headers.items())]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class LoadResult:
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    server_cpu: float | None = None  # share of one core the server used, warm-up included (Linux only)
    client_cpu: float = 0.0  # share of one core this load generator used

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


# --------------------------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    name: str, argv: list[str], env: dict[str, str], port: int, log_dir: Path, servers: dict[str, Server]
) -> Server:
    """Start a server in its own session (Ctrl-C reaches only us; we stop it), logging to files.

    It joins ``servers`` at once, before anyone waits for it, so that the caller's cleanup stops it
    even when the start is interrupted.
    """
    stderr_path = log_dir / f"{name}.stderr.log"
    with open(log_dir / f"{name}.stdout.log", "wb") as out, open(stderr_path, "wb") as err:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL, start_new_session=True
        )
    servers[name] = Server(name, port, process, stderr_path)
    return servers[name]


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        server.process.terminate()
        try:
            server.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process from ``/proc`` (None where there is no ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_stderr(server: Server, max_lines: int = 20) -> list[str]:
    try:
        lines = server.stderr_path.read_text(errors="replace").splitlines()
    except OSError:
        return []
    return lines[-max_lines:]


def http_get(port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_ok(server: Server, path: str, headers: dict[str, str] | None = None) -> None:
    """Poll ``path`` until it answers 200; fail early if the process dies."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            tail = "\n".join(server_stderr(server))
            raise BenchError(f"{server.name} exited with code {server.process.returncode}:\n{tail}")
        with contextlib.suppress(OSError):
            if http_get(server.port, path, headers, timeout=2.0)[0] == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{server.name} did not answer 200 on {path} within {STARTUP_TIMEOUT_S:g} s")


def start_openarts(work_dir: Path, servers: dict[str, Server]) -> Server:
    data_dir = work_dir / "data"
    data_dir.mkdir()
    # Only the temporary data directory: no inherited OPENARTS_DATABASE_URL may point at a real database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENARTS_")}
    env["OPENARTS_DATA_DIR"] = str(data_dir)
    port = free_port()
    argv = [sys.executable, "-m", "openarts", "serve", "--host", HOST, "--port", str(port), "--log-level", "warning"]
    server = start_server("openarts", argv, env, port, work_dir, servers)
    wait_until_ok(server, "/health")
    return server


def start_bare(work_dir: Path, body: bytes, request: SignedRequest, servers: dict[str, Server]) -> Server:
    app_dir = work_dir / "bare"
    app_dir.mkdir()
    (app_dir / "bare_app.py").write_text(BARE_APP_SOURCE)
    (app_dir / "body.json").write_bytes(body)
    port = free_port()
    argv = [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), "bare_app:app"]
    argv += ["--host", HOST, "--port", str(port), "--log-level", "warning"]
    server = start_server("bare", argv, dict(os.environ), port, work_dir, servers)
    wait_until_ok(server, request.path, request.headers)
    return server


# ------------------------------------------------------------------------------------------------ setup


def read_credentials(data_dir: Path) -> Credentials:
    raw: dict[str, Any] = json.loads((data_dir / "admin-credentials.json").read_text())
    return Credentials(raw["project_id"], raw["access_key"], raw["secret_key"])


def create_workspaces(port: int, creds: Credentials, count: int) -> None:
    client = (
        ModelArtsClient.new_builder()
        .with_credentials(BasicCredentials(creds.access_key, creds.secret_key, creds.project_id))
        .with_endpoint(f"http://{HOST}:{port}")
        .build()
    )
    for i in range(1, count + 1):
        client.create_workspace(CreateWorkspaceRequest(body=CreateWorkspaceReq(name=f"bench-ws-{i:02d}")))


def sign_list_request(port: int, creds: Credentials) -> SignedRequest:
    """Sign ``GET /v1/{project_id}/workspaces`` once, with the SDK's signer, as the SDK would."""
    request = SdkRequest(
        method="GET",
        schema="http",
        host=f"{HOST}:{port}",
        resource_path=f"/v1/{creds.project_id}/workspaces",
        query_params=[],
        header_params={"Content-Type": "application/json", "X-Project-Id": creds.project_id},
        body="",
    )
    signed = Signer(BasicCredentials(creds.access_key, creds.secret_key, creds.project_id)).sign(request)
    return SignedRequest(path=str(signed.uri), headers=dict(signed.header_params))


def fetch_reference_body(port: int, request: SignedRequest) -> bytes:
    """The pre-signed request must succeed and list exactly the ten workspaces."""
    status, body = http_get(port, request.path, request.headers)
    if status != 200:
        raise BenchError(f"pre-signed request answered {status}: {body[:500]!r}")
    total = json.loads(body).get("total_count")
    if total != WORKSPACES_TOTAL:
        raise BenchError(f"expected total_count == {WORKSPACES_TOTAL}, got {total!r}")
    return body


# ----------------------------------------------------------------------------------------- load generator


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one response (body sized by Content-Length) and return its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length = None
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length is None:
        raise BenchError(f"response without Content-Length: {head[:200]!r}")
    if length:
        await reader.readexactly(length)
    return status


async def connection_loop(port: int, payload: bytes, count_from: float, stop_at: float, result: LoadResult) -> None:
    """One keep-alive connection sending ``payload`` back-to-back until ``stop_at``."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        while True:
            writer.write(payload)
            try:
                status = await read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                now = time.monotonic()
                if now >= stop_at:
                    return
                if now >= count_from:
                    result.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(HOST, port)
                continue
            now = time.monotonic()
            if now >= stop_at:
                return
            if now >= count_from:
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if status == 200:
                    result.ok += 1
                else:
                    result.errors += 1
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def generate_load(port: int, payload: bytes, concurrency: int, seconds: float) -> LoadResult:
    result = LoadResult(seconds=seconds)
    count_from = time.monotonic() + WARMUP_S
    stop_at = count_from + seconds
    await asyncio.gather(*(connection_loop(port, payload, count_from, stop_at, result) for _ in range(concurrency)))
    return result


# ------------------------------------------------------------------------------------------------ report


@dataclass
class Measurements:
    results: dict[str, list[LoadResult]] = field(default_factory=lambda: {"bare": [], "openarts": []})

    def median_rps(self, name: str) -> float:
        return statistics.median(r.rps for r in self.results[name])

    def errors(self, name: str) -> int:
        return sum(r.errors for r in self.results[name])

    def non_200(self, name: str) -> dict[int, int]:
        merged: dict[int, int] = {}
        for r in self.results[name]:
            for status, n in r.statuses.items():
                if status != 200:
                    merged[status] = merged.get(status, 0) + n
        return merged


def measure(server: Server, payload: bytes, args: argparse.Namespace) -> LoadResult:
    """One warm-up plus measurement against ``server``, noting how busy it and the client were."""
    server_before, client_before, wall_before = cpu_seconds(server.process.pid), time.process_time(), time.monotonic()
    result = asyncio.run(generate_load(server.port, payload, args.concurrency, args.seconds))
    server_after, wall = cpu_seconds(server.process.pid), time.monotonic() - wall_before
    result.client_cpu = (time.process_time() - client_before) / wall
    if server_before is not None and server_after is not None:
        result.server_cpu = (server_after - server_before) / wall
    return result


def describe(result: LoadResult) -> str:
    server_cpu = "n/a" if result.server_cpu is None else f"{result.server_cpu:.0%}"
    return (
        f"{result.rps:>9.1f} req/s  ({result.ok} ok, {result.errors} errors; "
        f"cpu: server {server_cpu}, client {result.client_cpu:.0%})"
    )


def run_rounds(servers: dict[str, Server], payload: bytes, args: argparse.Namespace) -> Measurements:
    """Each round measures both targets; the order alternates so neither always runs first."""
    measurements = Measurements()
    order = ["bare", "openarts"]
    for round_no in range(1, args.rounds + 1):
        for name in order:
            result = measure(servers[name], payload, args)
            measurements.results[name].append(result)
            print(f"  round {round_no}  {name:<9} {describe(result)}")
        order.reverse()
    return measurements


def print_report(m: Measurements, args: argparse.Namespace) -> None:
    bare, openarts = m.median_rps("bare"), m.median_rps("openarts")
    print()
    print(f"{'target':<10} {'median req/s':>13}  {'errors':>6}  per round (req/s)")
    for name, median in (("bare", bare), ("openarts", openarts)):
        rounds = " ".join(f"{r.rps:.0f}" for r in m.results[name])
        print(f"{name:<10} {median:>13.1f}  {m.errors(name):>6}  {rounds}")
        if m.non_200(name):
            print(f"{'':<10} non-200 statuses: {m.non_200(name)}")
    print(f"(concurrency {args.concurrency}, {args.rounds} rounds of {args.seconds:g} s after {WARMUP_S:g} s warm-up)")
    # Each round measures both targets back to back, so its ratio cancels the slow drifts in the speed of
    # a shared machine that comparing medians taken minutes apart would not.
    paired = [o.rps / b.rps for b, o in zip(m.results["bare"], m.results["openarts"], strict=True) if b.rps]
    print(f"ratio of the medians = {openarts / bare if bare else 0.0:.2f}")
    print(f"per-round ratios: {' '.join(f'{r:.2f}' for r in paired)}")
    ratio = statistics.median(paired) if paired else 0.0
    print(f"ratio openarts/bare = {ratio:.2f} (median of the per-round ratios; target >= {TARGET_RATIO})")


def print_server_logs(servers: dict[str, Server]) -> None:
    for server in servers.values():
        lines = server_stderr(server)
        if lines:
            print(f"\n{server.name} stderr (last {len(lines)} lines):")
            print(textwrap.indent("\n".join(lines), "  "))


# -------------------------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=2.0, help="measured seconds per target per round")
    parser.add_argument("--rounds", type=int, default=9, help="rounds; each measures both targets")
    parser.add_argument("--concurrency", type=int, default=8, help="persistent keep-alive connections")
    args = parser.parse_args(argv)
    if args.seconds <= 0 or args.rounds < 1 or args.concurrency < 1:
        parser.error("--seconds must be > 0, --rounds and --concurrency >= 1")
    return args


@contextlib.contextmanager
def work_directory() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="openarts-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def benchmark(args: argparse.Namespace, work_dir: Path, servers: dict[str, Server]) -> Measurements:
    port = start_openarts(work_dir, servers).port
    creds = read_credentials(work_dir / "data")
    create_workspaces(port, creds, WORKSPACES_TOTAL - 1)
    request = sign_list_request(port, creds)
    body = fetch_reference_body(port, request)
    print(f"OpenArts on :{port}, project {creds.project_id}: pre-signed list -> 200, {len(body)} bytes, 10 workspaces")
    print(f"bare FastAPI on :{start_bare(work_dir, body, request, servers).port}")
    return run_rounds(servers, request.wire_bytes(), args)


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that the cleanup in ``main`` runs, as it does on Ctrl-C."""

    def handler(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    servers: dict[str, Server] = {}
    with work_directory() as work_dir:
        try:
            measurements = benchmark(args, work_dir, servers)
            print_report(measurements, args)
            print_server_logs(servers)
        except (BenchError, OSError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        finally:
            for server in servers.values():
                stop_server(server)
    total_errors = measurements.errors("bare") + measurements.errors("openarts")
    return 1 if total_errors else 0


if __name__ == "__main__":
    sys.exit(main())
