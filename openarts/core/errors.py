"""One error catalogue.

Every failure raises an :class:`ApiError`, which renders the ModelArts envelope
``{"error_code": "ModelArts.XXXX", "error_msg": "..."}`` with its HTTP status. Authentication and
routing failures use the API gateway's ``APIGW.*`` codes, as Huawei Cloud's gateway does in front of
ModelArts. The request id travels in the ``X-Request-Id`` header (see ``core.middleware``).
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        solution: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.solution = solution
        self.headers = headers or {}

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"error_code": self.code, "error_msg": self.message}
        if self.solution:
            body["error_solution"] = self.solution
        if request_id and self.code.startswith("APIGW."):
            body["request_id"] = request_id
        return body


# --- gateway -----------------------------------------------------------------------------------


def route_not_found() -> ApiError:
    return ApiError(404, "APIGW.0101", "The API does not exist or has not been published in the environment.")


def method_not_allowed(allowed: list[str]) -> ApiError:
    return ApiError(
        405,
        "APIGW.0101",
        "The API request method does not exist.",
        headers={"Allow": ", ".join(allowed)},
    )


def body_too_large(limit: int) -> ApiError:
    return ApiError(413, "APIGW.0201", f"Request entity too large: the limit is {limit} bytes.")


def auth_failed(reason: str) -> ApiError:
    return ApiError(401, "APIGW.0301", f"Incorrect IAM authentication information: {reason}")


# --- common ModelArts codes --------------------------------------------------------------------


def invalid_argument(message: str, code: str = "ModelArts.0101") -> ApiError:
    return ApiError(400, code, message)


def project_mismatch() -> ApiError:
    return ApiError(403, "ModelArts.0210", "The project ID in the URL does not match the caller's project.")


def forbidden(action: str) -> ApiError:
    return ApiError(403, "ModelArts.0112", f"Policy doesn't allow {action} to be performed.")


def quota_insufficient(resource: str, quota: int, used: int, requested: int) -> ApiError:
    return ApiError(
        400,
        "ModelArts.0118",
        f"QuotaInsufficient: {resource} quota is {quota}, {used} in use, {requested} more requested.",
    )


def internal_error() -> ApiError:
    return ApiError(500, "ModelArts.0010", "Internal error.")


# --- IAM (/v3/auth/tokens) --------------------------------------------------------------------


def iam_unauthorized(message: str = "The username or password is wrong.") -> ApiError:
    return ApiError(401, "IAM.0001", message)
