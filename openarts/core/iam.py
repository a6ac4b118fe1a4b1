"""``POST /v3/auth/tokens``: IAM password identities in, project-scoped tokens out."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from openarts.core import errors
from openarts.core.identity.service import issue_token
from openarts.core.services import services_of

router = APIRouter()


class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str | None = None
    name: str | None = None


class _PasswordUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    domain: _Named | None = None


class _Password(BaseModel):
    user: _PasswordUser


class _Identity(BaseModel):
    methods: list[str]
    password: _Password | None = None


class _Scope(BaseModel):
    model_config = ConfigDict(extra="ignore")
    project: _Named | None = None


class _Auth(BaseModel):
    identity: _Identity
    scope: _Scope | None = None


class TokenRequest(BaseModel):
    auth: _Auth


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"


@router.post("/v3/auth/tokens", status_code=201)
def create_token(body: TokenRequest, request: Request) -> JSONResponse:
    services = services_of(request)
    identity = body.auth.identity
    if "password" not in identity.methods or identity.password is None:
        raise errors.invalid_argument("only the password identity method is supported", "IAM.0004")
    user = identity.password.user
    project = body.auth.scope.project if body.auth.scope else None
    with services.db.write() as session:
        issued = issue_token(
            session,
            services.clock,
            services.settings.token_ttl_s,
            user_name=user.name,
            domain_name=user.domain.name if user.domain else None,
            password=user.password,
            project_id=project.id if project else None,
            project_name=project.name if project else None,
        )
    if issued is None:
        raise errors.iam_unauthorized()
    token, info = issued
    payload = {
        "token": {
            "methods": ["password"],
            "issued_at": _iso(info["issued_at_ms"]),
            "expires_at": _iso(info["expires_at_ms"]),
            "user": info["user"],
            "project": info["project"],
            "roles": [{"id": "0", "name": "te_admin" if info["is_admin"] else "te_agency"}],
            "catalog": [],
        }
    }
    return JSONResponse(payload, status_code=201, headers={"X-Subject-Token": token})
