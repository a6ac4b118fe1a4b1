"""Users, access keys and tokens: creating them and resolving a caller to a :class:`Principal`."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from openarts.core import ids
from openarts.core.clock import Clock, to_ms
from openarts.core.db import Database
from openarts.core.hot_reads import HotQuery
from openarts.core.identity.passwords import hash_password, verify_password
from openarts.core.identity.tables import AccessKey, Domain, Project, Token, User

DEFAULT_DOMAIN_NAME = "openarts"
ADMIN_USER_NAME = "admin"
_USER_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,63}$")
_PROJECT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


class IdentityError(ValueError):
    """A request about users or projects that cannot be carried out; the message says why."""


@dataclass(frozen=True)
class Principal:
    """Who is calling, as every authorisation rule sees it."""

    user_id: str
    user_name: str
    domain_id: str
    domain_name: str
    project_id: str
    is_admin: bool  # the domain's main account


# Families that keep per-project state (the default workspace "0", say) register here; each hook runs
# in the transaction that creates the project, so a project never exists without its defaults.
ProjectHook = Callable[[Session, Project], None]
project_created_hooks: list[ProjectHook] = []


def _new_project(session: Session, domain: Domain, project_id: str, name: str, now_ms: int) -> Project:
    project = Project(id=project_id, domain_id=domain.id, name=name, create_time=now_ms)
    session.add(project)
    session.flush()
    for hook in project_created_hooks:
        hook(session, project)
    return project


def _new_domain(session: Session, name: str, now_ms: int) -> Domain:
    if session.scalar(select(Domain).where(Domain.name == name)) is not None:
        raise IdentityError(f"domain {name!r} already exists")
    domain = Domain(id=ids.hex32(), name=name, create_time=now_ms)
    session.add(domain)
    session.flush()
    return domain


def default_project(session: Session) -> Project | None:
    return session.scalar(
        select(Project).join(Domain, Domain.id == Project.domain_id).where(Domain.name == DEFAULT_DOMAIN_NAME)
    )


def create_user(
    session: Session,
    clock: Clock,
    region: str,
    name: str,
    *,
    project_id: str | None = None,
    password: str | None = None,
    admin: bool = False,
) -> dict[str, Any]:
    """Create a user with one access key; returns the only copy of its secret key.

    Without ``project_id`` the user joins the default project. A ``project_id`` that does not exist yet
    founds a new domain (account) with that project, and the user becomes its main account.
    """
    if not _USER_NAME.match(name):
        raise IdentityError("user name must be 1-64 letters, digits, '_', '.' or '-'")
    if project_id is not None and not _PROJECT_ID.match(project_id):
        raise IdentityError("project id must be 1-64 letters, digits, '_' or '-'")
    now_ms = to_ms(clock.now())

    if project_id is None:
        ensure_default_project(session, clock, region)
        project = default_project(session)
        assert project is not None
        domain = session.get_one(Domain, project.domain_id)
    else:
        existing = session.get(Project, project_id)
        if existing is None:
            domain = _new_domain(session, name, now_ms)
            project = _new_project(session, domain, project_id, region, now_ms)
            admin = True
        else:
            project = existing
            domain = session.get_one(Domain, project.domain_id)

    if session.scalar(select(User).where(User.domain_id == domain.id, User.name == name)) is not None:
        raise IdentityError(f"user {name!r} already exists in domain {domain.name!r}")
    user = User(
        id=ids.hex32(),
        domain_id=domain.id,
        project_id=project.id,
        name=name,
        password_hash=hash_password(password) if password else None,
        is_admin=admin,
        enabled=True,
        credential_epoch=0,
        create_time=now_ms,
    )
    session.add(user)
    session.flush()  # the key below refers to the user
    key = AccessKey(
        access_key=ids.access_key_id(),
        user_id=user.id,
        secret_key=ids.secret_access_key(),
        enabled=True,
        create_time=now_ms,
    )
    session.add(key)
    session.flush()
    return {
        "user_id": user.id,
        "user_name": user.name,
        "domain_id": domain.id,
        "domain_name": domain.name,
        "project_id": project.id,
        "access_key": key.access_key,
        "secret_key": key.secret_key,
    }


def ensure_default_project(session: Session, clock: Clock, region: str) -> None:
    if default_project(session) is None:
        now_ms = to_ms(clock.now())
        domain = _new_domain(session, DEFAULT_DOMAIN_NAME, now_ms)
        _new_project(session, domain, ids.hex32(), region, now_ms)


def bootstrap_admin(session: Session, clock: Clock, region: str) -> dict[str, Any] | None:
    """On the first start, create the main account of the default domain; None if it exists."""
    ensure_default_project(session, clock, region)
    project = default_project(session)
    assert project is not None
    has_admin = session.scalar(select(User.id).where(User.domain_id == project.domain_id, User.is_admin.is_(True)))
    if has_admin is not None:
        return None
    password = secrets.token_urlsafe(18)
    created = create_user(session, clock, region, ADMIN_USER_NAME, password=password, admin=True)
    return {**created, "password": password, "project_name": project.name}


def find_user(session: Session, name: str, domain_name: str | None = None) -> User | None:
    query = select(User).join(Domain, Domain.id == User.domain_id).where(User.name == name)
    query = query.where(Domain.name == (domain_name or DEFAULT_DOMAIN_NAME))
    return session.scalar(query)


def set_password(session: Session, user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.credential_epoch += 1


def set_enabled(session: Session, user: User, enabled: bool) -> None:
    user.enabled = enabled
    user.credential_epoch += 1


# --- tokens ------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(
    session: Session,
    clock: Clock,
    ttl_s: int,
    *,
    user_name: str,
    domain_name: str | None,
    password: str,
    project_id: str | None,
    project_name: str | None,
) -> tuple[str, dict[str, Any]] | None:
    """Check a password identity and issue a project-scoped token; None if the identity is wrong."""
    user = find_user(session, user_name, domain_name)
    if user is None or not user.enabled or not verify_password(password, user.password_hash):
        return None
    project = session.get_one(Project, user.project_id)
    if project_id is not None and project_id != project.id:
        return None
    if project_name is not None and project_name != project.name:
        return None
    domain = session.get_one(Domain, user.domain_id)
    now = clock.now()
    token = "MIIOA" + secrets.token_urlsafe(48)
    session.add(
        Token(
            token_hash=_token_hash(token),
            user_id=user.id,
            project_id=project.id,
            credential_epoch=user.credential_epoch,
            issued_at=to_ms(now),
            expires_at=to_ms(now + ttl_s),
        )
    )
    body = {
        "user": {"id": user.id, "name": user.name, "domain": {"id": domain.id, "name": domain.name}},
        "project": {"id": project.id, "name": project.name, "domain": {"id": domain.id, "name": domain.name}},
        "issued_at_ms": to_ms(now),
        "expires_at_ms": to_ms(now + ttl_s),
        "is_admin": user.is_admin,
    }
    return token, body


# The two lookups below run on every authenticated request, as hot reads (see core/hot_reads.py).
_PRINCIPAL_COLUMNS = (User.id, User.name, Domain.id, Domain.name, User.project_id, User.is_admin)
_TOKEN_LOOKUP = HotQuery(
    select(*_PRINCIPAL_COLUMNS)
    .select_from(Token)
    .join(User, User.id == Token.user_id)
    .join(Domain, Domain.id == User.domain_id)
    .where(
        Token.token_hash == bindparam("token_hash"),
        Token.expires_at > bindparam("now_ms"),
        Token.credential_epoch == User.credential_epoch,
        User.enabled.is_(True),
    )
)
_ACCESS_KEY_LOOKUP = HotQuery(
    select(AccessKey.secret_key, *_PRINCIPAL_COLUMNS)
    .select_from(AccessKey)
    .join(User, User.id == AccessKey.user_id)
    .join(Domain, Domain.id == User.domain_id)
    .where(AccessKey.access_key == bindparam("access_key"), AccessKey.enabled.is_(True), User.enabled.is_(True))
)


def _principal(row: tuple[Any, ...]) -> Principal:
    user_id, user_name, domain_id, domain_name, project_id, is_admin = row
    return Principal(user_id, user_name, domain_id, domain_name, project_id, bool(is_admin))


def principal_for_token(db: Database, clock: Clock, token: str) -> Principal | None:
    """The caller behind a token still valid: unexpired, user enabled, credentials unchanged since."""
    rows = db.hot_rows(_TOKEN_LOOKUP, {"token_hash": _token_hash(token), "now_ms": to_ms(clock.now())})
    return _principal(rows[0]) if rows else None


def principal_for_access_key(db: Database, access_key: str) -> tuple[Principal, str] | None:
    """The caller behind an access key and its secret key, or None for an unknown or disabled key."""
    rows = db.hot_rows(_ACCESS_KEY_LOOKUP, {"access_key": access_key})
    return (_principal(rows[0][1:]), rows[0][0]) if rows else None


def project_users(session: Session, project_id: str) -> list[User]:
    return list(session.scalars(select(User).where(User.project_id == project_id).order_by(User.name)))
