"""The authenticated reverse proxy in front of notebook instances' Jupyter servers (HTTP and WebSocket).

Every ``/authoring/<instance_id>/...`` request is resolved to the instance's Jupyter (``127.0.0.1:<port>``,
same path: Jupyter serves under that base URL) and forwarded only if it presents that instance's token. The
platform's IAM credentials play no part here, just as a ModelArts notebook URL is opened with the instance
token and not with AK/SK.

Authorization rule. A request passes when it carries this instance's token in at least one of:

- the query, ``?token=<t>`` (what the instance ``url`` is opened with);
- the header ``Authorization: token <t>`` (or ``Bearer <t>``, which Jupyter also accepts);
- the proxy's cookie ``openarts-authoring-<instance_id>``, set on the answer to a request whose ``?token=``
  was right. Its value is HMAC-SHA256(key=token, "openarts-authoring:<instance_id>"), never the token: it
  proves knowledge of the token, is valid for this instance only, survives a restart of OpenArts and dies
  with the token. HttpOnly, SameSite=Lax, Path=/authoring/<instance_id>/ (Secure over https), session-long.

and no explicit token it presents (query or header) is wrong: a wrong token is refused even next to a valid
cookie. Tokens are compared with ``hmac.compare_digest``. A token is only ever checked against the instance
named in the URL, so instance A's token opens nothing of instance B's.

Error envelopes (ModelArts' shape, ``{"error_code", "error_msg"}``):

- 404 ``ModelArts.6309``: no such instance, or it is not running (the resolver said None);
- 403 ``APIGW.0301``: missing or wrong token, or a cookie-authenticated WebSocket from a foreign Origin.
  (``APIGW.0301`` is the gateway's "incorrect authentication information" code, which is what this is; the
  status is 403, not the gateway's usual 401, because there is no IAM challenge to answer here.)
  Nothing is forwarded to Jupyter.
- 503 ``ModelArts.6327``: the instance's Jupyter does not accept connections (starting, stopping, crashed);
  502 ``ModelArts.6327``: it broke the exchange; 504 ``ModelArts.6100``: it did not answer in time.

Jupyter keeps its own checks. The token the client presented travels to Jupyter unchanged (query or header),
so Jupyter authenticates it too. A request authenticated by the proxy cookie alone has the token added as an
``Authorization`` header for GET, HEAD and OPTIONS and WebSocket handshakes, so Jupyter accepts it even when
its own login cookie is missing (e.g. after the instance restarted). POST, PUT, PATCH and DELETE are forwarded
exactly as sent: Jupyter authenticates them with its own login cookie and still checks its ``_xsrf``
cookie/header pair and Origin, as it would if exposed directly. The proxy's own cookie is never forwarded.
Because Jupyter does not check Origin on token-authenticated WebSockets, the proxy checks it for
cookie-authenticated WebSockets (Origin absent, or its host equal to the Host header).

Host and Origin: the browser's Host and Origin headers are forwarded unchanged (Jupyter runs with
``allow_remote_access`` and ``trust_xheaders``, see ``jupyter.server_command``), so Jupyter's same-origin
checks compare what the browser really sent; X-Forwarded-For/-Proto/-Host are set by the proxy (any values
the client sent are dropped).

The HTTP client (one ``httpx.AsyncClient`` per event loop, created on first use) is closed by the router's
lifespan, which FastAPI runs with the app's when the router is included. It ignores proxy environment
variables (``trust_env=False``): the upstream is always 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import http.cookiejar
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import anyio
import httpx
from fastapi import APIRouter, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.typing import Origin, Subprotocol

from openarts.core.errors import ApiError
from openarts.core.services import Services, services_of
from openarts.notebooks.jupyter import AUTHORING_PREFIX, base_url, valid_instance_id

log = logging.getLogger("openarts.notebooks.proxy")

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# Methods after which Jupyter never changes state: the only ones a cookie-authenticated request may have the
# token added to (see the module docstring).
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# RFC 9110 section 7.6.1, plus the proxy-* pair: meaningful for one connection only, never forwarded.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"trailers",
        b"transfer-encoding",
        b"upgrade",
    }
)
# Set by the proxy itself; the client's values are dropped so that Jupyter (which trusts them) cannot be lied to.
# Expect too: uvicorn already answered the client's 100-continue, and the body is on its way.
_FORWARDING = frozenset(
    {b"forwarded", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"expect"}
)
_AUTH_HEADER = re.compile(r"(?:token|bearer)\s+(\S+)\s*", re.IGNORECASE)  # the schemes Jupyter accepts
# What may stand in a ws:// URI's authority; anything else in a Host header is not passed on.
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
_COOKIE_PREFIX = "openarts-authoring-"
_UPSTREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=300.0, pool=30.0)
_WS_OPEN_TIMEOUT_S = 10.0
_WS_CLOSE_TIMEOUT_S = 2.0
_MAX_CLOSE_REASON = 123  # bytes: what fits a close frame

Auth = Literal["query", "header", "cookie"]


@dataclass(frozen=True)
class Upstream:
    """Where a running instance's Jupyter listens, and the token that opens it."""

    instance_id: str
    port: int
    token: str


Resolver = Callable[[Services, str], Upstream | None]


# --- errors ---------------------------------------------------------------------------------------------


def _not_found() -> ApiError:
    return ApiError(404, "ModelArts.6309", "The notebook instance does not exist or is not running.")


def _forbidden(reason: str = "the instance token is missing or wrong.") -> ApiError:
    return ApiError(403, "APIGW.0301", f"Incorrect authentication information: {reason}")


def _unreachable(error: Exception) -> ApiError:
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | OSError):
        return ApiError(
            503, "ModelArts.6327", "The notebook instance is not answering; it may be starting or stopping."
        )
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return ApiError(504, "ModelArts.6100", "The notebook instance did not answer in time.")
    return ApiError(502, "ModelArts.6327", "The notebook instance broke off the exchange.")


# --- authorization --------------------------------------------------------------------------------------


def cookie_name(instance_id: str) -> str:
    return _COOKIE_PREFIX + instance_id


def cookie_value(upstream: Upstream) -> str:
    message = f"openarts-authoring:{upstream.instance_id}".encode()
    return hmac.new(upstream.token.encode(), message, hashlib.sha256).hexdigest()


def _same(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


def _authorize(upstream: Upstream, connection: HTTPConnection) -> Auth:
    """How the request proved it knows the instance token; raises 403 if it did not (see the docstring)."""
    query_tokens = connection.query_params.getlist("token")
    header_tokens: list[str] = []
    for name, value in connection.headers.items():
        if name == "authorization" and (match := _AUTH_HEADER.fullmatch(value)):
            header_tokens.append(match.group(1))
    # Every explicit token must be right (compare them all: no early exit on the first mismatch).
    verdicts = [_same(token, upstream.token) for token in (*query_tokens, *header_tokens)]
    if not all(verdicts):
        raise _forbidden()
    if query_tokens:
        return "query"
    if header_tokens:
        return "header"
    cookie = connection.cookies.get(cookie_name(upstream.instance_id))
    if cookie is not None and _same(cookie, cookie_value(upstream)):
        return "cookie"
    raise _forbidden()


async def _admit(
    resolve: Resolver, services: Services, instance_id: str, connection: HTTPConnection
) -> tuple[Upstream, Auth]:
    if not valid_instance_id(instance_id):
        raise _not_found()
    upstream = await run_in_threadpool(resolve, services, instance_id)  # a database read: off the event loop
    if upstream is None or upstream.instance_id != instance_id:
        raise _not_found()
    return upstream, _authorize(upstream, connection)


def _set_cookie_header(upstream: Upstream, secure: bool) -> bytes:
    attributes = f"Path={base_url(upstream.instance_id)}; HttpOnly; SameSite=Lax" + ("; Secure" if secure else "")
    return f"{cookie_name(upstream.instance_id)}={cookie_value(upstream)}; {attributes}".encode("latin-1")


# --- forwarding: headers --------------------------------------------------------------------------------


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> set[bytes]:
    """Header names listed in Connection: hop-by-hop for this message too."""
    names: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            names.update(part.strip().lower() for part in value.split(b",") if part.strip())
    return names


def _without_proxy_cookie(value: bytes, instance_id: str) -> bytes:
    own = cookie_name(instance_id).encode()
    kept = [part for part in value.split(b";") if part.strip().split(b"=", 1)[0].strip() != own]
    return b";".join(kept).strip()


def _upstream_headers(connection: HTTPConnection, upstream: Upstream, inject_token: bool) -> list[tuple[bytes, bytes]]:
    raw: list[tuple[bytes, bytes]] = connection.scope["headers"]
    dropped = _HOP_BY_HOP | _FORWARDING | _connection_tokens(raw)
    if inject_token:
        dropped |= {b"authorization"}  # any other scheme the client sent would only garble the token's header
    headers: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        if name in dropped:
            continue
        if name == b"cookie":
            value = _without_proxy_cookie(value, upstream.instance_id)
            if not value:
                continue
        headers.append((name, value))
    client = connection.client.host if connection.client else "127.0.0.1"
    headers += [
        (b"x-forwarded-for", client.encode("latin-1")),
        (b"x-real-ip", client.encode("latin-1")),
        (b"x-forwarded-proto", connection.url.scheme.replace("ws", "http").encode("latin-1")),
    ]
    host = connection.headers.get("host")
    if host:
        headers.append((b"x-forwarded-host", host.encode("latin-1")))
    if inject_token:
        headers.append((b"authorization", f"token {upstream.token}".encode("latin-1")))
    return headers


def _upstream_target(connection: HTTPConnection, upstream: Upstream) -> str:
    """Path and query for Jupyter, with the client's own percent-encoding (file names may hold %2F, %3F ...)."""
    raw_path: bytes | None = connection.scope.get("raw_path")
    prefix = base_url(upstream.instance_id).encode()
    if raw_path is not None and (raw_path.startswith(prefix) or raw_path == prefix.rstrip(b"/")):
        path = raw_path.decode("latin-1")
    else:
        path = quote(connection.scope["path"], safe="/:@!$&'()*+,;=~-._")
    query: bytes = connection.scope.get("query_string", b"")
    return path + ("?" + query.decode("latin-1") if query else "")


def _downstream_headers(response: httpx.Response, upstream: Upstream) -> list[tuple[bytes, bytes]]:
    raw = response.headers.raw
    # Date and Server: the OpenArts server sends its own, and two of each would be malformed.
    dropped = _HOP_BY_HOP | _connection_tokens(raw) | {b"date", b"server"}
    own_origins = (f"http://127.0.0.1:{upstream.port}".encode(), f"http://localhost:{upstream.port}".encode())
    headers: list[tuple[bytes, bytes]] = []
    for name, value in raw:
        key = name.lower()
        if key in dropped:
            continue
        if key == b"location":
            for origin in own_origins:  # Jupyter's redirects are relative; an absolute one must not leak its port
                if value.startswith(origin):
                    value = value[len(origin) :] or b"/"
        headers.append((key, value))
    return headers


# --- forwarding: HTTP -----------------------------------------------------------------------------------


class _NoCookieJar(http.cookiejar.CookieJar):
    """Keeps nothing. An httpx client stores the cookies of every answer and sends them with every later
    request: shared by all users, it would hand one browser's Jupyter login cookie to the next caller."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        return None

    def extract_cookies(self, response: Any, request: Any) -> None:
        return None


class _Clients:
    """One httpx client per event loop (connections belong to the loop that opened them)."""

    def __init__(self) -> None:
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            client = httpx.AsyncClient(
                timeout=_UPSTREAM_TIMEOUT,
                follow_redirects=False,
                trust_env=False,
                cookies=_NoCookieJar(),
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64, keepalive_expiry=30.0),
            )
            # httpx adds Accept, Accept-Encoding, Connection and User-Agent to every request by default: the
            # proxy sends what the client sent, nothing more (an Accept-Encoding the browser did not send
            # could get it a compressed body it cannot read).
            for name in list(client.headers.keys()):
                del client.headers[name]
            self._client, self._loop = client, loop
        return self._client

    async def aclose(self) -> None:
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.aclose()


class _StreamedUpstream(Response):
    """Jupyter's answer, passed on as it arrives (JupyterLab's bundles are megabytes), then closed."""

    def __init__(self, upstream: httpx.Response, headers: list[tuple[bytes, bytes]]) -> None:
        self.status_code = upstream.status_code
        self.raw_headers = headers
        self.background = None
        self._upstream = upstream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        broken: httpx.TransportError | None = None
        try:
            async with anyio.create_task_group() as group:

                async def watch_for_disconnect() -> None:
                    # uvicorn drops what is sent after the client left rather than failing the send: without
                    # this, a cancelled download would still be read from Jupyter to its end.
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    group.cancel_scope.cancel()

                group.start_soon(watch_for_disconnect)
                try:
                    await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
                    async for chunk in self._upstream.aiter_raw():  # raw: Content-Encoding and -Length stay true
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                except OSError:
                    pass  # the client went away (some servers raise from send): nothing left to tell anyone
                except httpx.TransportError as error:
                    broken = error
                group.cancel_scope.cancel()
        finally:
            await self._upstream.aclose()
        if broken is not None:
            # Jupyter broke off mid-body. The status line is already out, so the only honest thing left is to
            # abort the client's connection (the server does so when the app raises) rather than end it as if
            # the body were whole.
            log.warning("notebook instance answer cut short on %s: %r", scope.get("path"), broken)
            raise broken


def _body_stream(request: Request) -> AsyncIterator[bytes] | None:
    headers = request.headers
    if "content-length" not in headers and "transfer-encoding" not in headers:
        return None  # no body: sending an empty chunked one would only cost Jupyter a parse
    return request.stream()


# --- forwarding: WebSocket ------------------------------------------------------------------------------


def _sendable_close_code(code: int | None) -> int:
    """A close code that may go in a close frame (1005, 1006 and 1015 only describe what happened)."""
    if code is None or code == 1005:
        return 1000
    if code in (1006, 1015) or not (1000 <= code <= 1014 or 3000 <= code <= 4999) or code == 1004:
        return 1011
    return code


def _close_reason(reason: str | None) -> str:
    data = (reason or "").encode()[:_MAX_CLOSE_REASON]
    return data.decode(errors="ignore")


def _origin_matches_host(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return True  # not a browser: browsers always send Origin on WebSocket handshakes
    return urlsplit(origin.lower()).netloc == (websocket.headers.get("host") or "").lower()


async def _deny(websocket: WebSocket, response: Response) -> None:
    """Refuse a handshake with an HTTP answer when the server can send one, else with a plain 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(response)
    else:
        await websocket.close(code=1008)


def _error_response(error: ApiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status, headers=error.headers)


async def _connect_upstream(websocket: WebSocket, upstream: Upstream, auth: Auth) -> ClientConnection:
    host = websocket.headers.get("host") or ""
    if not _HOST.fullmatch(host):
        host = f"127.0.0.1:{upstream.port}"
    # The URI carries the browser's Host (so Jupyter's Origin check compares what the browser sent); the TCP
    # connection goes to the instance's port on 127.0.0.1 whatever the URI says.
    uri = f"ws://{host}{_upstream_target(websocket, upstream)}"
    headers = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in _upstream_headers(websocket, upstream, inject_token=auth == "cookie")
        if name not in {b"host", b"origin", b"user-agent"} and not name.startswith(b"sec-websocket-")
    ]
    origin = websocket.headers.get("origin")
    return await connect(
        uri,
        host="127.0.0.1",
        port=upstream.port,
        origin=Origin(origin) if origin is not None else None,
        subprotocols=[Subprotocol(name) for name in websocket.scope.get("subprotocols", [])] or None,
        additional_headers=headers,
        user_agent_header=websocket.headers.get("user-agent"),
        proxy=None,
        compression=None,  # loopback: deflating would only cost CPU
        open_timeout=_WS_OPEN_TIMEOUT_S,
        close_timeout=_WS_CLOSE_TIMEOUT_S,
        # Jupyter pings its clients itself, and the browser's own pings are answered by the server; a proxy
        # ping that went unanswered while the instance is busy would only cut a working connection.
        ping_interval=None,
        max_size=None,  # kernel outputs (images, big tables) are as large as Jupyter lets them be
    )


async def _pump(websocket: WebSocket, remote: ClientConnection) -> None:
    """Relay frames both ways until either side closes, then close the other with the same code."""
    async with anyio.create_task_group() as group:

        async def client_to_remote() -> None:
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        code = _sendable_close_code(message.get("code"))
                        await remote.close(code, _close_reason(message.get("reason")))
                        break
                    data: bytes | None = message.get("bytes")
                    text: str | None = message.get("text")
                    if data is not None:
                        await remote.send(data)
                    elif text is not None:
                        await remote.send(text)
            except ConnectionClosed:
                return  # Jupyter closed: remote_to_client sees it too and closes the client with its code
            group.cancel_scope.cancel()

        async def remote_to_client() -> None:
            try:
                async for frame in remote:
                    if isinstance(frame, str):
                        await websocket.send_text(frame)
                    else:
                        await websocket.send_bytes(frame)
            except ConnectionClosed:
                pass  # closed abnormally: close_code below says how
            except (WebSocketDisconnect, RuntimeError, OSError):
                # The client is gone (uvicorn and Starlette raise these from send): end the Jupyter side too.
                await remote.close(1001, "client went away")
                group.cancel_scope.cancel()
                return
            with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
                await websocket.close(_sendable_close_code(remote.close_code), _close_reason(remote.close_reason))
            group.cancel_scope.cancel()

        group.start_soon(client_to_remote)
        group.start_soon(remote_to_client)


# --- the router -----------------------------------------------------------------------------------------


def build_router(resolve: Resolver) -> APIRouter:
    """Routes ``/authoring/{instance_id}`` and everything below it, HTTP and WebSocket, to the instance.

    ``resolve(services, instance_id)`` is synchronous (it may read the database; it is called in a worker
    thread) and returns None for an instance that does not exist or is not running.
    """
    clients = _Clients()

    @asynccontextmanager
    async def close_client(_app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await clients.aclose()

    router = APIRouter(lifespan=close_client)

    @router.api_route(AUTHORING_PREFIX + "{instance_id}", methods=METHODS, include_in_schema=False)
    async def instance_root(request: Request, instance_id: str) -> Response:
        """``/authoring/<id>`` without its slash: on to the base URL, whose cookie path it lies outside."""
        upstream, _ = await _admit(resolve, services_of(request), instance_id, request)
        query = request.scope.get("query_string", b"").decode("latin-1")
        return RedirectResponse(base_url(upstream.instance_id) + ("?" + query if query else ""), status_code=307)

    @router.api_route(AUTHORING_PREFIX + "{instance_id}/{path:path}", methods=METHODS, include_in_schema=False)
    async def forward_http(request: Request, instance_id: str, path: str) -> Response:
        upstream, auth = await _admit(resolve, services_of(request), instance_id, request)
        inject = auth == "cookie" and request.method in _SAFE_METHODS
        client = clients.get()
        outgoing = client.build_request(
            request.method,
            f"http://127.0.0.1:{upstream.port}{_upstream_target(request, upstream)}",
            headers=_upstream_headers(request, upstream, inject_token=inject),
            content=_body_stream(request),
        )
        try:
            answer = await client.send(outgoing, stream=True)
        except httpx.TransportError as error:
            log.info("notebook instance %s unreachable: %r", upstream.instance_id, error)
            raise _unreachable(error) from None
        headers = _downstream_headers(answer, upstream)
        if auth == "query" and request.cookies.get(cookie_name(upstream.instance_id)) != cookie_value(upstream):
            headers.append((b"set-cookie", _set_cookie_header(upstream, secure=request.url.scheme == "https")))
        return _StreamedUpstream(answer, headers)

    @router.websocket(AUTHORING_PREFIX + "{instance_id}/{path:path}")
    async def forward_websocket(websocket: WebSocket, instance_id: str, path: str) -> None:
        services: Services = websocket.app.state.services  # services_of takes a Request; same place
        try:
            upstream, auth = await _admit(resolve, services, instance_id, websocket)
            if auth == "cookie" and not _origin_matches_host(websocket):
                raise _forbidden("a cookie-authenticated WebSocket must come from the instance's own origin.")
        except ApiError as error:
            await _deny(websocket, _error_response(error))
            return
        try:
            remote = await _connect_upstream(websocket, upstream, auth)
        except InvalidStatus as refused:  # Jupyter itself said no (unknown kernel, its own auth): pass it on
            answer = refused.response
            content_type = answer.headers.get("Content-Type", "text/plain")
            await _deny(
                websocket, Response(answer.body or b"", status_code=answer.status_code, media_type=content_type)
            )
            return
        except (OSError, TimeoutError, InvalidHandshake, InvalidURI) as error:
            log.info("notebook instance %s WebSocket unreachable: %r", upstream.instance_id, error)
            await _deny(websocket, _error_response(_unreachable(error)))
            return
        try:
            await websocket.accept(subprotocol=remote.subprotocol)
            await _pump(websocket, remote)
        finally:
            await remote.close()

    return router
