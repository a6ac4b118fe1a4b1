from __future__ import annotations

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from openarts.core.db import Base


class Domain(Base):
    """An account (tenant). Its main account is the user with ``is_admin``."""

    __tablename__ = "domains"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    create_time: Mapped[int]


class Project(Base):
    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    create_time: Mapped[int]


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("domain_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    domain_id: Mapped[str] = mapped_column(ForeignKey("domains.id"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str | None] = mapped_column(String(256))
    is_admin: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    # Bumped when the password changes or the user is disabled: every token issued before is void.
    credential_epoch: Mapped[int] = mapped_column(default=0)
    create_time: Mapped[int]


class AccessKey(Base):
    __tablename__ = "access_keys"

    access_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # HMAC verification needs the secret itself; it is never logged nor returned after creation.
    secret_key: Mapped[str] = mapped_column(String(128))
    enabled: Mapped[bool] = mapped_column(default=True)
    create_time: Mapped[int]


class Token(Base):
    """An issued IAM token, stored as the SHA-256 of its value."""

    __tablename__ = "tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    credential_epoch: Mapped[int]
    issued_at: Mapped[int]
    expires_at: Mapped[int] = mapped_column(index=True)
