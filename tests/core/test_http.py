"""The error envelope and request plumbing, in process."""

from __future__ import annotations

from typing import Any

import pytest

from openarts.core.errors import ApiError
from tests.conftest import InProcess


def _is_envelope(body: Any, code: str) -> bool:
    return isinstance(body, dict) and body.get("error_code") == code and bool(body.get("error_msg"))


def test_health_needs_no_credentials(inprocess: InProcess) -> None:
    response = inprocess.http.get("/health")
    assert response.status_code == 200
    assert response.headers["x-request-id"]


def test_unknown_route_is_404_envelope(inprocess: InProcess) -> None:
    response = inprocess.http.get("/v1/nowhere/at/all")
    assert response.status_code == 404
    assert _is_envelope(response.json(), "APIGW.0101")
    assert len(response.headers["x-request-id"]) == 32


def test_wrong_method_is_405_with_allow(inprocess: InProcess) -> None:
    pid = inprocess.admin["project_id"]
    response = inprocess.signed("PATCH", f"/v1/{pid}/workspaces")
    assert response.status_code == 405
    assert _is_envelope(response.json(), "APIGW.0101")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_body_over_limit_is_413(inprocess: InProcess) -> None:
    pid = inprocess.admin["project_id"]
    huge = {"name": "abcd", "description": "x" * (inprocess.settings.max_body_bytes + 1)}
    response = inprocess.signed("POST", f"/v1/{pid}/workspaces", body=huge)
    assert response.status_code == 413
    assert _is_envelope(response.json(), "APIGW.0201")


def test_streamed_body_over_limit_is_413(inprocess: InProcess) -> None:
    pid = inprocess.admin["project_id"]
    limit = inprocess.settings.max_body_bytes

    def chunks() -> Any:
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536

    response = inprocess.http.post(f"/v1/{pid}/workspaces", content=chunks(), headers={"X-Auth-Token": "t"})
    assert response.status_code == 413


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": 1234}, "name"),
        ({"name": "abcd", "grants": "nope"}, "grants"),
        ({"name": "abcd", "surprise": 1}, "surprise"),
    ],
)
def test_validation_failure_is_400_naming_the_field(inprocess: InProcess, body: Any, field: str) -> None:
    pid = inprocess.admin["project_id"]
    response = inprocess.signed("POST", f"/v1/{pid}/workspaces", body=body)
    assert response.status_code == 400
    payload = response.json()
    assert _is_envelope(payload, "ModelArts.0101")
    assert field in payload["error_msg"]


def test_invalid_json_is_400(inprocess: InProcess) -> None:
    pid = inprocess.admin["project_id"]
    response = inprocess.http.post(
        f"/v1/{pid}/workspaces",
        content=b"{not json",
        headers={"Content-Type": "application/json", "X-Auth-Token": "whatever"},
    )
    assert response.status_code in (400, 401)
    assert response.json()["error_code"] in ("ModelArts.0101", "APIGW.0301")


def test_unexpected_error_is_500_without_trace(inprocess: InProcess, caplog: pytest.LogCaptureFixture) -> None:
    def boom() -> None:
        raise RuntimeError("secret internals")

    inprocess.app.router.add_api_route("/boom", boom)
    response = inprocess.http.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error_code": "ModelArts.0010", "error_msg": "Internal error."}
    assert response.headers["x-request-id"]
    assert "secret internals" in caplog.text  # the trace goes to the log only


def test_api_error_renders_solution() -> None:
    error = ApiError(400, "ModelArts.2755", "algorithm not found.", solution="Check the algorithm id.")
    assert error.body() == {
        "error_code": "ModelArts.2755",
        "error_msg": "algorithm not found.",
        "error_solution": "Check the algorithm id.",
    }
