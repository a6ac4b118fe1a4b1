"""Identifier formats, as ModelArts spells them (reference §0, "IDs")."""

from __future__ import annotations

import secrets
import string
import uuid

DEFAULT_WORKSPACE_ID = "0"


def hex32() -> str:
    """32 lower-case hex characters, no hyphens: workspaces, users, domains, projects."""
    return uuid.uuid4().hex


def uuid4() -> str:
    """UUID4 with hyphens: jobs, notebooks, workflows, executions."""
    return str(uuid.uuid4())


def access_key_id() -> str:
    """20 upper-case letters and digits, the shape of a Huawei Cloud AK."""
    alphabet = string.ascii_uppercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(20))


def secret_access_key() -> str:
    """40 letters and digits, the shape of a Huawei Cloud SK."""
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(40))
