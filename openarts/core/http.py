"""Request plumbing shared by every route: request ids, body limits and the error envelope."""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from openarts.core import errors
from openarts.core.errors import ApiError

log = logging.getLogger("openarts.http")

DEFAULT_VALIDATION_CODE = "ModelArts.0101"


class RequestContextMiddleware:
    """Gives each request an id (``X-Request-Id``), caps its body, and turns crashes into a 500.

    A pure ASGI middleware: it sits between Starlette's outermost error layer and the routes, so even
    an unexpected exception leaves with the ModelArts envelope and the request id, and the traceback
    goes to the log only.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int, uncapped_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        # Paths whose bodies stream through to a server that enforces its own limit (a notebook's
        # JupyterLab takes uploads of tens of MB in one request): the API's cap is not theirs.
        self.uncapped_prefixes = uncapped_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        capped = not scope["path"].startswith(self.uncapped_prefixes)
        declared = _content_length(scope)
        if capped and declared is not None and declared > self.max_body_bytes:
            await _send_error(send_with_id, errors.body_too_large(self.max_body_bytes), request_id)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    # FastAPI turns errors raised while it parses a body into a 400; the handlers
                    # below see this mark and answer 413 instead.
                    scope["state"]["body_too_large"] = self.max_body_bytes
                    raise errors.body_too_large(self.max_body_bytes)
            return message

        try:
            await self.app(scope, limited_receive if capped else receive, send_with_id)
        except Exception:
            log.exception("unhandled error in %s %s (request %s)", scope.get("method"), scope.get("path"), request_id)
            if not started:
                await _send_error(send_with_id, errors.internal_error(), request_id)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_error(send: Send, error: ApiError, request_id: str) -> None:
    body = json.dumps(error.body(request_id)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _request_id(request: Request) -> str | None:
    request_id: str | None = request.scope.get("state", {}).get("request_id")
    return request_id


def error_response(request: Request, error: ApiError) -> JSONResponse:
    limit = request.scope.get("state", {}).get("body_too_large")
    if limit is not None:
        error = errors.body_too_large(limit)
    return JSONResponse(error.body(_request_id(request)), status_code=error.status, headers=error.headers)


def ok(payload: Any, status_code: int = 200) -> JSONResponse:
    """A JSON answer. Routes return these rather than bare dicts: FastAPI would otherwise re-encode
    and re-validate every response, which costs more than the request's own work."""
    return JSONResponse(payload, status_code=status_code)


QueryModel = TypeVar("QueryModel", bound=BaseModel)


def parse_query(request: Request, model: type[QueryModel]) -> QueryModel:
    """Validate the query string against a pydantic model.

    Hot list routes use this instead of declaring each parameter: FastAPI's per-parameter machinery
    costs several times the validation itself. Failures answer like any other validation error.
    """
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors(include_url=False)]
        ) from None


class FamilyRoute(APIRoute):
    """A route whose validation failures carry its family's error code (training says 2788, ...)."""

    validation_error_code: str = DEFAULT_VALIDATION_CODE


def route_class(validation_error_code: str) -> type[FamilyRoute]:
    return type(
        "FamilyRoute_" + validation_error_code.replace(".", "_"),
        (FamilyRoute,),
        {
            "validation_error_code": validation_error_code,
        },
    )


def _describe_validation_error(exc: RequestValidationError) -> str:
    first: dict[str, Any] = exc.errors()[0] if exc.errors() else {}
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    loc = list(first.get("loc", ()))
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]
    location = [str(part) for part in loc]
    field = ".".join(location) or "body"
    if first.get("type") == "missing":
        return f"Invalid Argument: field '{field}' is required."
    return f"Invalid Argument: field '{field}': {first.get('msg', 'invalid value')}."


_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] == Match.FULL for route in request.app.routes)
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(request, exc)

    async def on_validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        route = request.scope.get("route")
        code = getattr(route, "validation_error_code", DEFAULT_VALIDATION_CODE)
        return error_response(request, errors.invalid_argument(_describe_validation_error(exc), code))

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            error = errors.route_not_found()
        elif exc.status_code == 405:
            error = errors.method_not_allowed(_allowed_methods(request))
        elif exc.status_code >= 500:
            error = errors.internal_error()
        else:
            error = ApiError(exc.status_code, "ModelArts.0101", str(exc.detail))
        return error_response(request, error)

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_exception)
