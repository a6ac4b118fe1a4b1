"""IAM tokens and AK/SK signatures over the real app, with a clock the test moves."""

from __future__ import annotations

import time
from typing import Any

import pytest

from openarts.core.identity import service as identity
from tests.conftest import InProcess


def _token_body(user: str, password: str, project: dict[str, str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user, "password": password, "domain": {"name": "openarts"}}},
            }
        }
    }
    if project is not None:
        body["auth"]["scope"] = {"project": project}
    return body


def _token(app: InProcess, user: str, password: str, project: dict[str, str] | None = None) -> str:
    response = app.http.post("/v3/auth/tokens", json=_token_body(user, password, project))
    assert response.status_code == 201, response.text
    assert response.json()["token"]["project"]["id"] == app.admin["project_id"]
    return response.headers["x-subject-token"]


def _list(app: InProcess, token: str) -> int:
    response = app.http.get(f"/v1/{app.admin['project_id']}/workspaces", headers={"X-Auth-Token": token})
    return response.status_code


def test_password_identity_gives_a_working_token(inprocess: InProcess) -> None:
    token = _token(inprocess, "admin", inprocess.admin["password"], {"name": inprocess.settings.region})
    assert _list(inprocess, token) == 200


@pytest.mark.parametrize(
    "body",
    [
        _token_body("admin", "wrong"),
        _token_body("nobody", "whatever"),
        _token_body("admin", "x", {"id": "someone-elses-project"}),
    ],
)
def test_wrong_identity_is_refused(inprocess: InProcess, body: dict[str, Any]) -> None:
    if body["auth"]["identity"]["password"]["user"]["password"] == "x":
        body["auth"]["identity"]["password"]["user"]["password"] = inprocess.admin["password"]
    response = inprocess.http.post("/v3/auth/tokens", json=body)
    assert response.status_code == 401
    assert "x-subject-token" not in response.headers


def test_malformed_token_request_is_400(inprocess: InProcess) -> None:
    response = inprocess.http.post("/v3/auth/tokens", json={"auth": {"identity": {"methods": ["password"]}}})
    assert response.status_code == 400


def test_token_expires_after_24_hours(inprocess: InProcess) -> None:
    token = _token(inprocess, "admin", inprocess.admin["password"])
    inprocess.clock.advance(24 * 3600 - 5)
    assert _list(inprocess, token) == 200
    inprocess.clock.advance(10)
    assert _list(inprocess, token) == 401


def test_password_change_and_disable_void_tokens(inprocess: InProcess) -> None:
    inprocess.create_user("alice", password="first-pass")
    token = _token(inprocess, "alice", "first-pass")
    assert _list(inprocess, token) == 200
    with inprocess.db.write() as session:
        user = identity.find_user(session, "alice")
        assert user is not None
        identity.set_password(session, user, "second-pass")
    assert _list(inprocess, token) == 401
    token = _token(inprocess, "alice", "second-pass")
    with inprocess.db.write() as session:
        user = identity.find_user(session, "alice")
        assert user is not None
        identity.set_enabled(session, user, False)
    assert _list(inprocess, token) == 401
    response = inprocess.http.post("/v3/auth/tokens", json=_token_body("alice", "second-pass"))
    assert response.status_code == 401


def test_disabled_user_access_key_stops_working(inprocess: InProcess) -> None:
    bob = inprocess.create_user("bob")
    path = f"/v1/{bob['project_id']}/workspaces"
    assert inprocess.signed("GET", path, creds=bob).status_code == 200
    with inprocess.db.write() as session:
        user = identity.find_user(session, "bob")
        assert user is not None
        identity.set_enabled(session, user, False)
    assert inprocess.signed("GET", path, creds=bob).status_code == 401


def _date(offset_s: float, now: float) -> str:
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now + offset_s))


@pytest.mark.parametrize(("offset", "status"), [(-899, 200), (899, 200), (-901, 401), (901, 401)])
def test_clock_skew_window(inprocess: InProcess, offset: int, status: int) -> None:
    inprocess.clock.set(float(int(time.time())))
    path = f"/v1/{inprocess.admin['project_id']}/workspaces"
    response = inprocess.signed("GET", path, sdk_date=_date(offset, inprocess.clock.now()))
    assert response.status_code == status
    if status == 401:
        assert "expired" in response.json()["error_msg"]


def test_foreign_project_in_path_is_403(inprocess: InProcess) -> None:
    other = inprocess.create_user("carol", project_id="f" * 32)
    assert other["project_id"] != inprocess.admin["project_id"]
    response = inprocess.signed("GET", f"/v1/{other['project_id']}/workspaces")
    assert response.status_code == 403
    assert response.json()["error_code"] == "ModelArts.0210"


def test_signature_without_date_header_is_refused(inprocess: InProcess) -> None:
    path = f"/v1/{inprocess.admin['project_id']}/workspaces"
    good = inprocess.signed("GET", path)
    assert good.status_code == 200
    auth = good.request.headers["authorization"].replace("x-sdk-date;", "").replace(";x-sdk-date", "")
    response = inprocess.http.get(path, headers={**good.request.headers, "authorization": auth})
    assert response.status_code == 401
