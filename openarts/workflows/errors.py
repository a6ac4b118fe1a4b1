"""Workflow errors. ModelArts has no workflow-specific codes (reference E.2): bad input is the common
``ModelArts.0101``/``0104`` with a message naming the step or field, and a missing resource is a 404."""

from __future__ import annotations

from openarts.core.errors import ApiError


def invalid(message: str) -> ApiError:
    """The body or a query is malformed or names something that does not exist."""
    return ApiError(400, "ModelArts.0101", f"Invalid Argument: {message}")


def not_allowed(message: str) -> ApiError:
    """A well-formed request the object's current state does not allow."""
    return ApiError(400, "ModelArts.0104", f"Parameter error: {message}")


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, "ModelArts.0104", f"{what} {ident} does not exist.")
