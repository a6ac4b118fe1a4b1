"""What calling a model through an OpenArts service's ``access_address`` costs, against calling the same
model process directly.

What is measured
----------------
The real OpenArts server (``openarts serve``, one Uvicorn worker, a fresh SQLite data directory; the job
benchmark's server settings) publishes a tiny scikit-learn classifier (LogisticRegression on four
features, saved with joblib as ``model/model.m``, ModelArts' sklearn layout) and deploys it as a
real-time service with one instance. Then, with the same client code and the same request body (two rows
of ``data.req_data``):

- through OpenArts: ``POST {access_address}`` with an IAM token (``X-Auth-Token``): authentication, the
  workspace check, the routing table, the forward to the instance and back;
- directly: ``POST /`` on the instance's own port (127.0.0.1), the same model server process.

Each path is driven by 8 client threads (concurrency 8), each with one keep-alive connection, for
``--seconds`` per round; rounds alternate between the two paths (``--rounds`` of each), so a drift of the
machine's speed hits both. Throughput is the median over rounds of requests per second; latencies
(p50, p99) are over every request of a path. The ratio is median(OpenArts rps) / median(direct rps).

The client, the server and the model process share the machine: on two cores the gateway competes for
CPU with the model it fronts, which the direct path does not, and that is part of what is measured.

Why
---
The target is a throughput ratio of at least 0.7: the platform may cost at most 30% of what the model
itself can serve. The script prints the figures and the verdict; it exits 0 whether or not the target is
met, and non-zero only when the server does not start or the service does not run.

Usage: ``python bench/inference_overhead.py [--rounds 5] [--seconds 2]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import signal
import statistics
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from job_overhead import (  # the sibling benchmark's server plumbing
    BenchError,
    Server,
    launch_server,
    machine_line,
    run,
    wait_until_healthy,
)

CONCURRENCY = 8
TARGET_RATIO = 0.7
FEATURES = ("f1", "f2", "f3", "f4")
BODY = json.dumps(
    {
        "data": {
            "req_data": [dict(zip(FEATURES, row, strict=True)) for row in ([5.0, 3.4, 1.5, 0.2], [6.5, 2.8, 4.6, 1.5])]
        }
    }
).encode()


def write_package(server: Server) -> str:
    import joblib  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    rows = [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [6.7, 3.1, 4.4, 1.4], [6.3, 2.5, 4.9, 1.5]]
    folder = server.data_dir / "obs" / "bench" / "iris" / "model"
    folder.mkdir(parents=True)
    joblib.dump(LogisticRegression().fit(rows, [0, 0, 1, 1]), folder / "model.m")
    (folder / "config.json").write_text(json.dumps({"model_type": "Scikit_Learn", "model_algorithm": "predict"}))
    return "/bench/iris/"


def token(server: Server) -> str:
    creds: dict[str, Any] = json.loads((server.data_dir / "admin-credentials.json").read_text())
    user = {"name": creds["user_name"], "password": creds["password"], "domain": {"name": creds["domain_name"]}}
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": user}},
            "scope": {"project": {"id": creds["project_id"]}},
        }
    }
    request = urllib.request.Request(
        server.url + "/v3/auth/tokens", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["X-Subject-Token"])


def call(server: Server, auth: str, method: str, path: str, body: Any = None) -> Any:
    creds: dict[str, Any] = json.loads((server.data_dir / "admin-credentials.json").read_text())
    data = json.dumps(body).encode() if body is not None else None
    headers = {"X-Auth-Token": auth, "Content-Type": "application/json"}
    url = server.url + path.replace("{project_id}", creds["project_id"])
    request = urllib.request.Request(url, data, headers, method=method)
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def deploy(server: Server, auth: str) -> tuple[str, int]:
    """Publish the model and deploy it; the access_address and the instance's own port."""
    source = write_package(server)
    body: dict[str, Any] = {"model_name": "bench-iris", "model_version": "1.0.0", "source_location": source}
    model_id = call(server, auth, "POST", "/v1/{project_id}/models", body)["model_id"]
    wait_for(lambda: call(server, auth, "GET", f"/v1/{{project_id}}/models/{model_id}")["model_status"], "published")
    spec = {"cpu": 0.5, "memory": 512}
    config = [
        {"model_id": model_id, "weight": 100, "specification": "custom", "custom_spec": spec, "instance_count": 1}
    ]
    body = {"service_name": "bench-iris", "infer_type": "real-time", "config": config}
    service_id = call(server, auth, "POST", "/v1/{project_id}/services", body)["service_id"]
    wait_for(lambda: call(server, auth, "GET", f"/v1/{{project_id}}/services/{service_id}")["status"], "running")
    address = call(server, auth, "GET", f"/v1/{{project_id}}/services/{service_id}")["access_address"]
    return str(address), instance_port(server.data_dir)


def wait_for(read: Any, wanted: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (status := read()) != wanted:
        if status == "failed" or time.monotonic() > deadline:
            raise BenchError(f"status {status}, not {wanted}")
        time.sleep(0.1)


def instance_port(data_dir: Path) -> int:
    """The port of the one model server, from its command line (``--port N``)."""
    marker = str(data_dir / "models")
    for entry in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
            if any(a.startswith(marker) for a in argv) and "--port" in argv:
                return int(argv[argv.index("--port") + 1])
    raise BenchError("the model server's process was not found")


def drive(url: str, headers: dict[str, str], seconds: float) -> tuple[int, list[float]]:
    """CONCURRENCY threads with a keep-alive connection each, for ``seconds``: (requests, latencies)."""
    parts = urlsplit(url)
    latencies: list[list[float]] = [[] for _ in range(CONCURRENCY)]
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        mine = latencies[index]
        try:
            while (started := time.perf_counter()) < stop_at:
                connection.request("POST", parts.path or "/", BODY, headers)
                response = connection.getresponse()
                payload = response.read()
                if response.status != 200:
                    errors.append(f"{response.status} {payload[:200]!r}")
                    return
                mine.append(time.perf_counter() - started)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONCURRENCY)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError(f"a request failed: {errors[0]}")
    every = [value for values in latencies for value in values]
    return len(every), every


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] * 1000


def benchmark(args: argparse.Namespace, work_dir: Path, servers: list[Server]) -> None:
    server = launch_server(work_dir, servers)
    wait_until_healthy(server)
    auth = token(server)
    print(machine_line())
    address, port = deploy(server, auth)
    gateway_headers = {"Content-Type": "application/json", "X-Auth-Token": auth}
    direct_headers = {"Content-Type": "application/json"}
    direct_url = f"http://127.0.0.1:{port}/"
    print(f"service {address} (instance on :{port}); {args.rounds} rounds of {args.seconds:g} s per path")
    drive(address, gateway_headers, 0.5)  # warm-ups: connections, the model's first load
    drive(direct_url, direct_headers, 0.5)
    rates: dict[str, list[float]] = {"openarts": [], "direct": []}
    latencies: dict[str, list[float]] = {"openarts": [], "direct": []}
    for _ in range(args.rounds):
        for name, url, headers in (
            ("direct", direct_url, direct_headers),
            ("openarts", address, gateway_headers),
        ):
            count, values = drive(url, headers, args.seconds)
            rates[name].append(count / args.seconds)
            latencies[name].extend(values)
    print(f"\n{'path':<10} {'req/s (median)':>15} {'p50 ms':>8} {'p99 ms':>8}   rounds (req/s)")
    for name in ("direct", "openarts"):
        rounds = " ".join(f"{rate:.0f}" for rate in rates[name])
        print(
            f"{name:<10} {statistics.median(rates[name]):>15.0f} {percentile(latencies[name], 0.5):>8.2f} "
            f"{percentile(latencies[name], 0.99):>8.2f}   {rounds}"
        )
    ratio = statistics.median(rates["openarts"]) / statistics.median(rates["direct"])
    print(f"\n{machine_line()} (at the end)")
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"throughput ratio openarts/direct: {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")


def stop_model_servers(servers: list[Server]) -> None:
    """Service instances outlive their server by design: end those of this run."""
    for server in servers:
        marker = str(server.data_dir / "services") + os.sep
        for entry in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                argv = [a.decode(errors="replace") for a in (entry / "cmdline").read_bytes().split(b"\0")]
                if any(a.startswith(marker) for a in argv):
                    os.killpg(int(entry.name), signal.SIGKILL)  # a runner leads its instance's group


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.seconds <= 0:
        parser.error("--rounds must be >= 1 and --seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    servers: list[Server] = []

    def bench(args: argparse.Namespace, work_dir: Path, started: list[Server]) -> None:
        try:
            benchmark(args, work_dir, started)
        finally:
            servers.extend(started)

    try:
        return run(bench, parse_args(argv))
    finally:
        stop_model_servers(servers)


if __name__ == "__main__":
    sys.exit(main())
