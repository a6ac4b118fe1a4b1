"""Authentication for every route but ``/health`` and the IAM token endpoint.

A caller presents either an IAM token (``X-Auth-Token``) or an ``SDK-HMAC-SHA256`` signature made with
its access key. Either way the result is a :class:`Principal`, and the ``project_id`` in the path must
be the caller's own project.

This runs on the event loop, not in the thread pool: its one database read is a primary-key lookup that
never waits on a lock (SQLite readers don't block in WAL mode), and a thread hand-off would cost more
than the lookup itself.
"""

from __future__ import annotations

from fastapi import Request

from openarts.core import errors, signing
from openarts.core.identity.service import Principal, principal_for_access_key, principal_for_token
from openarts.core.services import Services, services_of

# The SDK always signs these; without the date a signature could be replayed forever.
REQUIRED_SIGNED_HEADERS = ("host", "x-sdk-date")


def _raw_path(request: Request) -> str:
    raw = request.scope.get("raw_path")
    if not raw:
        return request.url.path
    return bytes(raw).decode("latin-1").split("?", 1)[0]


def _verify_signature(request: Request, body: bytes, services: Services, header: str) -> Principal:
    try:
        auth = signing.parse_authorization(header)
    except signing.SignatureFormatError as exc:
        raise errors.auth_failed(str(exc)) from None
    headers = {k.decode("latin-1").lower(): v.decode("utf-8", "replace") for k, v in request.scope["headers"]}
    for name in REQUIRED_SIGNED_HEADERS:
        if name not in auth.signed_headers:
            raise errors.auth_failed(f"{name} must be a signed header")
    missing = [name for name in auth.signed_headers if name not in headers]
    if missing:
        raise errors.auth_failed(f"signed header {missing[0]} is missing")
    try:
        signed_at = signing.parse_sdk_date(headers["x-sdk-date"])
    except signing.SignatureFormatError as exc:
        raise errors.auth_failed(str(exc)) from None
    if abs(services.clock.now() - signed_at) > services.settings.signature_skew_s:
        raise errors.auth_failed("signature expired")

    found = principal_for_access_key(services.db, auth.access_key)
    if found is None:
        raise errors.auth_failed("verify aksk signature fail")
    principal, secret_key = found
    canonical = signing.canonical_request(
        request.method,
        _raw_path(request),
        request.scope.get("query_string", b"").decode("latin-1"),
        headers,
        auth.signed_headers,
        body,
    )
    expected = signing.signature(secret_key, signing.string_to_sign(headers["x-sdk-date"], canonical))
    if not signing.signatures_match(expected, auth.signature):
        raise errors.auth_failed("verify aksk signature fail")
    return principal


async def authenticate(request: Request) -> Principal:
    """The dependency every family router declares. It takes nothing but the request: FastAPI charges
    for each dependency it resolves, and this runs on every call."""
    services = services_of(request)
    token = request.headers.get("x-auth-token")
    authorization = request.headers.get("authorization")
    if token:
        principal = principal_for_token(services.db, services.clock, token)
        if principal is None:
            raise errors.auth_failed("the token is invalid or has expired")
    elif authorization:
        # The signature covers the body exactly as received.
        principal = _verify_signature(request, await request.body(), services, authorization)
    else:
        raise errors.auth_failed("x-auth-token not found")

    path_project = request.path_params.get("project_id")
    header_project = request.headers.get("x-project-id")
    for claimed in (path_project, header_project):
        if claimed is not None and claimed != principal.project_id:
            raise errors.project_mismatch()
    request.state.principal = principal
    return principal


def principal_of(request: Request) -> Principal:
    """The caller :func:`authenticate` admitted; only for routes under an authenticated router."""
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal):
        raise RuntimeError("route is not behind the authenticate dependency")
    return principal
