"""The authoring proxy in front of a real JupyterLab, served by uvicorn on a free port.

The app here is the proxy router with the platform's plumbing (error handlers, request ids) and a fixed
resolver instead of the notebooks table: instance A is a real Jupyter server, instance B a spy socket that
counts every connection made to it (so "nothing was forwarded" is observed, not assumed), instance C a
running-but-unreachable one (its port is closed).
"""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from websockets.exceptions import ConnectionClosedOK, InvalidStatus
from websockets.sync.client import connect

from openarts.core.http import RequestContextMiddleware, install_error_handlers
from openarts.core.services import Services
from openarts.notebooks import jupyter
from openarts.notebooks.proxy import Upstream, build_router, cookie_name, cookie_value
from tests.notebooks.test_jupyter_runtime import RunningJupyter, run_code, start_jupyter

pytestmark = pytest.mark.timeout(120)

KERNEL_PROTOCOL = "v1.kernel.websocket.jupyter.org"


class Spy:
    """A TCP listener that counts connections and hangs up: stands in for a Jupyter that must not be reached."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.listener.close()


class Proxy:
    """The proxy router on a FastAPI app built like OpenArts', served by uvicorn in a thread."""

    def __init__(self, upstreams: dict[str, Upstream]) -> None:
        self.resolved: list[str] = []

        def resolve(_services: Services, instance_id: str) -> Upstream | None:
            self.resolved.append(instance_id)
            return upstreams.get(instance_id)

        app = FastAPI()
        app.state.services = SimpleNamespace()  # the resolver here needs no settings, database or clock
        install_error_handlers(app)
        app.add_middleware(RequestContextMiddleware, max_body_bytes=4 * 1024 * 1024)
        app.include_router(build_router(resolve))
        self.port = jupyter.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ws_url = f"ws://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the proxy did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Setup:
    def __init__(self, a: RunningJupyter, spy: Spy, proxy: Proxy, token_b: str) -> None:
        self.a = a
        self.spy = spy
        self.proxy = proxy
        self.token_b = token_b

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.proxy.url, trust_env=False, timeout=30, follow_redirects=False)

    def a_path(self, rest: str) -> str:
        return f"/authoring/{self.a.instance_id}/{rest}"

    def a_ws(self, rest: str) -> str:
        return f"{self.proxy.ws_url}/authoring/{self.a.instance_id}/{rest}"

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"token {token or self.a.token}"}

    def a_cookie(self) -> str:
        """The proxy cookie's value for instance A, as the proxy sets it."""
        return cookie_value(Upstream(self.a.instance_id, self.a.port, self.a.token))


def handshake_status(url: str, headers: dict[str, str]) -> int:
    """The HTTP status a WebSocket handshake is refused with (fails the test if it is accepted)."""
    try:
        with connect(url, additional_headers=headers, proxy=None, open_timeout=10):
            pass
    except InvalidStatus as refused:
        return refused.response.status_code
    raise AssertionError(f"{url} was accepted")


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    a = start_jupyter(tmp_path_factory.mktemp("proxy-jupyter"))
    spy = Spy()
    token_b = jupyter.new_token()
    upstreams = {
        a.instance_id: Upstream(a.instance_id, a.port, a.token),
        "instance-b": Upstream("instance-b", spy.port, token_b),
        "instance-c": Upstream("instance-c", jupyter.free_port(), "token-c"),  # nothing listens there
    }
    proxy = Proxy(upstreams)
    try:
        yield Setup(a, spy, proxy, token_b)
    finally:
        proxy.stop()
        spy.close()
        a.stop()
        assert jupyter.instance_processes(a.state_dir) == []


def reached_jupyter(setup: Setup, marker: str) -> bool:
    """Whether a request naming ``marker`` got to Jupyter: it logs every answer of 400 and above."""
    return marker in setup.a.log()


def wait_for_log(setup: Setup, marker: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while marker not in setup.a.log():
        assert time.monotonic() < deadline, f"{marker} never reached Jupyter's log"
        time.sleep(0.05)


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert body["error_code"] == "APIGW.0301"
    assert body["error_msg"]


# --- HTTP -----------------------------------------------------------------------------------------------


def test_the_lab_page_opens_with_the_token_and_sets_a_scoped_cookie(setup: Setup) -> None:
    with setup.http() as client:
        response = client.get(setup.a_path(f"lab?token={setup.a.token}"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>JupyterLab</title>" in response.text
    cookies = response.headers.get_list("set-cookie")
    # Jupyter's own cookies (XSRF, login) and the proxy's all come through as separate headers.
    assert any(value.startswith("_xsrf=") for value in cookies)
    own = [value for value in cookies if value.startswith(cookie_name(setup.a.instance_id) + "=")]
    assert len(own) == 1
    attributes = [part.strip() for part in own[0].split(";")]
    assert f"Path=/authoring/{setup.a.instance_id}/" in attributes
    assert "HttpOnly" in attributes and "SameSite=Lax" in attributes
    assert setup.a.token not in own[0]


def test_static_files_stream_through_whole(setup: Setup) -> None:
    with setup.http() as client:
        page = client.get(setup.a_path("lab"), headers=setup.auth())
        assert page.status_code == 200
        marker = f"/authoring/{setup.a.instance_id}/static/lab/"
        start = page.text.index(marker)
        script = page.text[start : page.text.index('"', start)]
        response = client.get(script, headers=setup.auth())
    assert response.status_code == 200
    assert len(response.content) > 10_000
    if "content-length" in response.headers and "content-encoding" not in response.headers:
        assert int(response.headers["content-length"]) == len(response.content)


def test_the_proxy_keeps_no_cookies_of_its_own(setup: Setup) -> None:
    # Jupyter sets its login cookie when a request comes without one. Were the proxy's shared HTTP client to
    # keep the cookies it sees, a second browser would arrive at Jupyter carrying the first one's.
    for _ in range(2):
        with setup.http() as browser:
            page = browser.get(setup.a_path(f"lab?token={setup.a.token}"))
            assert page.status_code == 200
            assert any(value.startswith("_xsrf=") for value in page.headers.get_list("set-cookie"))
    assert len(page.headers.get_list("date")) == 1


def test_the_bare_instance_url_redirects_to_its_base(setup: Setup) -> None:
    with setup.http() as client:
        response = client.get(f"/authoring/{setup.a.instance_id}?token={setup.a.token}")
    assert response.status_code == 307
    assert response.headers["location"] == f"/authoring/{setup.a.instance_id}/?token={setup.a.token}"


def test_jupyter_redirects_keep_the_base_url(setup: Setup) -> None:
    with setup.http() as client:
        response = client.get(setup.a_path(""), headers=setup.auth())
    assert response.status_code in (301, 302)
    assert response.headers["location"].startswith(f"/authoring/{setup.a.instance_id}/lab")


def test_the_contents_api_writes_files(setup: Setup) -> None:
    with setup.http() as client:
        model = {"type": "file", "format": "text", "content": "written through the proxy\n"}
        response = client.put(setup.a_path("api/contents/hello.txt"), json=model, headers=setup.auth())
        assert response.status_code in (200, 201), response.text
        assert (setup.a.work_dir / "hello.txt").read_text() == "written through the proxy\n"
        back = client.get(setup.a_path("api/contents/hello.txt"), params={"content": "1"}, headers=setup.auth())
    assert back.status_code == 200
    assert back.json()["content"] == "written through the proxy\n"


def test_a_browser_session_keeps_jupyters_xsrf_check(setup: Setup) -> None:
    with setup.http() as browser:
        page = browser.get(setup.a_path(f"lab?token={setup.a.token}"))
        assert page.status_code == 200
        xsrf = browser.cookies.get("_xsrf")
        assert xsrf
        # Cookies alone read.
        listing = browser.get(setup.a_path("api/contents"))
        assert listing.status_code == 200, listing.text
        # A cookie-authenticated write without Jupyter's XSRF header is refused by Jupyter itself ...
        forged = browser.post(setup.a_path("api/contents"), json={"type": "file"})
        assert forged.status_code == 403
        assert "error_code" not in forged.text  # Jupyter's answer, not the proxy's
        # ... and passes with it, as JupyterLab sends it.
        made = browser.post(setup.a_path("api/contents"), json={"type": "file"}, headers={"X-XSRFToken": xsrf})
        assert made.status_code == 201, made.text
    # Only the proxy's cookie (no Jupyter login cookie): reads pass (the proxy adds the token), writes do not
    # get the token added, so Jupyter's own checks decide.
    own = {cookie_name(setup.a.instance_id): cookie_value(Upstream(setup.a.instance_id, setup.a.port, setup.a.token))}
    with httpx.Client(base_url=setup.proxy.url, trust_env=False, cookies=own) as fresh:
        assert fresh.get(setup.a_path("api/contents")).status_code == 200
        assert fresh.post(setup.a_path("api/contents"), json={"type": "file"}).status_code == 403


@pytest.mark.parametrize(
    "credentials",
    ["none", "wrong-query", "wrong-header", "other-instance-token", "wrong-query-next-to-good-cookie", "forged-cookie"],
)
def test_requests_without_this_instances_token_are_refused_and_not_forwarded(setup: Setup, credentials: str) -> None:
    marker = f"refused-{uuid.uuid4().hex}"
    path = setup.a_path(f"api/contents/{marker}")
    headers: dict[str, str] = {}
    cookies: dict[str, str] = {}
    good_cookie = cookie_value(Upstream(setup.a.instance_id, setup.a.port, setup.a.token))
    if credentials == "wrong-query":
        path += "?token=not-the-token"
    elif credentials == "wrong-header":
        headers = setup.auth("not-the-token")
    elif credentials == "other-instance-token":
        headers = setup.auth(setup.token_b)
    elif credentials == "wrong-query-next-to-good-cookie":
        path += "?token=not-the-token"
        cookies = {cookie_name(setup.a.instance_id): good_cookie}
    elif credentials == "forged-cookie":
        cookies = {cookie_name(setup.a.instance_id): setup.a.token}  # the raw token is not the cookie
    with httpx.Client(base_url=setup.proxy.url, trust_env=False, cookies=cookies) as client:
        for method in ("GET", "PUT", "DELETE"):
            assert_refused(client.request(method, path, headers=headers))
        # A control request with the token does reach Jupyter, so its log would show the refused ones.
        control = f"control-{uuid.uuid4().hex}"
        assert client.get(setup.a_path(f"api/contents/{control}"), headers=setup.auth()).status_code == 404
    wait_for_log(setup, control)
    assert not reached_jupyter(setup, marker)


def test_one_instances_token_does_not_open_another(setup: Setup) -> None:
    before = setup.spy.connections
    with setup.http() as client:
        assert_refused(client.get(f"/authoring/instance-b/lab?token={setup.a.token}"))
        assert_refused(client.get("/authoring/instance-b/api/status", headers=setup.auth()))
        assert_refused(client.post("/authoring/instance-b/api/kernels", headers=setup.auth(), json={}))
        assert_refused(client.get("/authoring/instance-b/lab"))
    cookie = {cookie_name("instance-b"): cookie_value(Upstream(setup.a.instance_id, setup.a.port, setup.a.token))}
    with httpx.Client(base_url=setup.proxy.url, trust_env=False, cookies=cookie) as client:
        assert_refused(client.get("/authoring/instance-b/lab"))
    assert setup.spy.connections == before


def test_unknown_instances_are_404(setup: Setup) -> None:
    with setup.http() as client:
        for path in ("/authoring/no-such-instance/lab", "/authoring/no-such-instance", "/authoring/bad%20id/lab"):
            response = client.get(path, headers=setup.auth())
            assert response.status_code == 404, path
            assert response.json()["error_code"] == "ModelArts.6309"
            assert response.headers.get("x-request-id")


def test_an_unreachable_instance_is_503_not_500(setup: Setup) -> None:
    with setup.http() as client:
        response = client.get("/authoring/instance-c/lab", headers={"Authorization": "token token-c"})
    assert response.status_code == 503
    assert response.json()["error_code"] == "ModelArts.6327"


def test_the_resolver_runs_off_the_event_loop(setup: Setup) -> None:
    # The proxy answered the requests above while resolving in worker threads; this only pins that a
    # request is resolved against the instance named in its URL.
    setup.proxy.resolved.clear()
    with setup.http() as client:
        client.get(setup.a_path("api/status"), headers=setup.auth())
    assert setup.proxy.resolved == [setup.a.instance_id]


# --- WebSocket ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kernel(setup: Setup) -> Iterator[str]:
    with setup.http() as client:
        response = client.post(setup.a_path("api/kernels"), headers=setup.auth(), json={})
        assert response.status_code == 201, response.text
        kernel_id: str = response.json()["id"]
        try:
            yield kernel_id
        finally:
            client.delete(setup.a_path(f"api/kernels/{kernel_id}"), headers=setup.auth())


def test_code_runs_over_the_kernel_channels(setup: Setup, kernel: str) -> None:
    url = setup.a_ws(f"api/kernels/{kernel}/channels")
    assert run_code(url, "print(6*7)", headers=setup.auth()) == "42\n"
    assert run_code(f"{url}?token={setup.a.token}", "print('by query')") == "by query\n"


def test_a_browser_websocket_with_the_cookie_from_the_same_origin(setup: Setup, kernel: str) -> None:
    own = (
        f"{cookie_name(setup.a.instance_id)}={cookie_value(Upstream(setup.a.instance_id, setup.a.port, setup.a.token))}"
    )
    url = setup.a_ws(f"api/kernels/{kernel}/channels")
    printed = run_code(url, "print('cookie')", headers={"Cookie": own}, origin=setup.proxy.url)
    assert printed == "cookie\n"
    with pytest.raises(InvalidStatus) as refused:
        run_code(url, "print('x')", headers={"Cookie": own}, origin="http://evil.example")
    assert refused.value.response.status_code == 403


def test_the_kernel_subprotocol_is_negotiated_through(setup: Setup, kernel: str) -> None:
    url = setup.a_ws(f"api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}")
    with connect(url, additional_headers=setup.auth(), subprotocols=[KERNEL_PROTOCOL], proxy=None) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == KERNEL_PROTOCOL


@pytest.mark.parametrize("credentials", ["none", "wrong", "other-instance-token"])
def test_websockets_without_this_instances_token_are_refused(setup: Setup, kernel: str, credentials: str) -> None:
    headers: dict[str, str] = {}
    if credentials == "wrong":
        headers = setup.auth("not-the-token")
    elif credentials == "other-instance-token":
        headers = setup.auth(setup.token_b)
    marker = f"ws-refused-{uuid.uuid4().hex}"
    url = setup.a_ws(f"api/kernels/{kernel}/channels?session_id={marker}")
    assert handshake_status(url, headers) == 403
    before = setup.spy.connections
    assert handshake_status(f"{setup.proxy.ws_url}/authoring/instance-b/api/events/subscribe", setup.auth()) == 403
    assert setup.spy.connections == before
    assert not reached_jupyter(setup, marker)


def test_closing_either_side_closes_the_other(setup: Setup, kernel: str) -> None:
    def connections() -> int:
        status = jupyter.activity(setup.a.port, setup.a.instance_id, setup.a.token)
        assert status is not None
        return status.connections

    def wait_connections(expected: int) -> None:
        deadline = time.monotonic() + 10
        while connections() != expected:
            assert time.monotonic() < deadline, f"expected {expected} kernel connections"
            time.sleep(0.05)

    url = setup.a_ws(f"api/kernels/{kernel}/channels?session_id={uuid.uuid4().hex}")
    # The client closes: the proxy closes its side towards Jupyter.
    with connect(url, additional_headers=setup.auth(), proxy=None):
        wait_connections(1)
    wait_connections(0)
    # Jupyter closes (a terminal whose shell exits): the client is told, with a code it may receive.
    with setup.http() as client:
        response = client.post(setup.a_path("api/terminals"), headers=setup.auth(), json={})
        assert response.status_code == 200, response.text
        name = response.json()["name"]
    with connect(setup.a_ws(f"terminals/websocket/{name}"), additional_headers=setup.auth(), proxy=None) as ws:
        ws.send(json.dumps(["stdin", "exit\r"]))
        with pytest.raises(ConnectionClosedOK):
            while True:
                ws.recv(timeout=15)
        # Jupyter's close frame has no status (1005), which may not be sent on: the client gets a normal close.
        assert ws.close_code == 1000
