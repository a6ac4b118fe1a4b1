"""The error shape of ModelArts' training v2 API: a ``ModelArts.27xx/28xx`` code, the catalogue's name
in the message, and an ``error_solution``. Algorithms, experiments and jobs all build theirs here."""

from __future__ import annotations

from openarts.core.errors import ApiError


def training_error(code: str, name: str, message: str, solution: str, status: int = 400) -> ApiError:
    return ApiError(status, f"ModelArts.{code}", f"{name}: {message}", solution=solution)


def invalid_param(message: str) -> ApiError:
    return training_error("2788", "InvalidParam", message, "Check the request parameters.")
