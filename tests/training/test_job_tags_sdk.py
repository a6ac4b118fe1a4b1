"""Tags on training jobs, and finding jobs by them, through the official SDK against a live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    CountResourceInstancesReq,
    CountResourceInstancesReqMatches,
    CountResourceInstancesReqTags,
    CountTrainingJobsByTagsRequest,
    CreateTmsTagsRequest,
    CreateTrainJobTagsRequest,
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    DeleteTmsTagsRequest,
    DeleteTrainJobTagsRequest,
    ListTrainingJobsByTagsRequest,
    ListTrainingJobTagsRequest,
    Match,
    MutiValueTag,
    ResourceInstancesFilterReq,
    ShowTrainJobTagsRequest,
    TmsTag,
)

from tests.training.conftest import Raw
from tests.training.jobs_support import job, wait_for

Unique = Callable[[str], str]
Tags = dict[str, str]


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _jobs(client: Any, names: Iterable[str], workspace_id: str = "0") -> list[str]:
    """Cheap jobs, run to their end one after the other (the test server runs one 2u job at a time)."""
    ids = [
        client.create_training_job(job(name, command="python -c pass", workspace_id=workspace_id)).metadata.id
        for name in names
    ]
    for job_id in ids:
        wait_for(client, job_id)
    return ids


def _tms(tags: Tags) -> list[TmsTag]:
    return [TmsTag(key=key, value=value) for key, value in tags.items()]


def _create(client: Any, job_id: str, tags: Tags) -> Any:
    return client.create_train_job_tags(
        CreateTrainJobTagsRequest(training_job_id=job_id, body=CreateTmsTagsRequest(tags=_tms(tags)))
    )


def _delete(client: Any, job_id: str, tags: list[TmsTag]) -> Any:
    return client.delete_train_job_tags(
        DeleteTrainJobTagsRequest(training_job_id=job_id, body=DeleteTmsTagsRequest(tags=tags))
    )


def _show(client: Any, job_id: str) -> Tags:
    shown = client.show_train_job_tags(ShowTrainJobTagsRequest(training_job_id=job_id))
    return {tag.key: tag.value for tag in shown.tags}


def _project_tags(client: Any, **page: int) -> dict[str, list[str]]:
    listed = client.list_training_job_tags(ListTrainingJobTagsRequest(**page))
    return {tag.key: tag.values for tag in listed.tags}


def _find(client: Any, limit: int | None = None, offset: int | None = None, **body: Any) -> Any:
    request = ListTrainingJobsByTagsRequest(limit=limit, offset=offset, body=ResourceInstancesFilterReq(**body))
    return client.list_training_jobs_by_tags(request)


def _found(client: Any, **body: Any) -> set[str]:
    listed = _find(client, **body)
    assert listed.total_count == len(listed.resources)
    return {resource.resource_id for resource in listed.resources}


def _count(client: Any, tags: dict[str, list[str]] | None = None, **body: Any) -> int:
    req_tags = [CountResourceInstancesReqTags(key=k, values=v) for k, v in (tags or {}).items()] or None
    matches = [CountResourceInstancesReqMatches(key=m.key, value=m.value) for m in body.pop("matches", [])] or None
    request = CountTrainingJobsByTagsRequest(body=CountResourceInstancesReq(tags=req_tags, matches=matches, **body))
    total: int = client.count_training_jobs_by_tags(request).total_count
    return total


def _multi(tags: dict[str, list[str]]) -> list[MutiValueTag]:
    return [MutiValueTag(key=key, values=values) for key, values in tags.items()]


# --- one job's tags --------------------------------------------------------------------------------


def test_create_overwrite_show_and_delete(admin_client: Any, unique: Unique) -> None:
    (job_id,) = _jobs(admin_client, [unique("tagged")])
    assert _show(admin_client, job_id) == {}
    long_key, long_value = "k" * 128, "v" * 255
    first = {
        "team": "vision",
        "stage": "dev",
        "owner": "ann@example.com",
        "note": "",
        "标签": "中文值",  # letters of any language
        "a.b:c=d+e-f@g_h i": "path/to/x:1=2+3-4@5_6 7",  # every special character the rules allow
        long_key: long_value,  # the longest key and value
    }
    created = _create(admin_client, job_id, first)
    assert created.status_code == 204
    assert _show(admin_client, job_id) == first

    # An existing key gets the new value; new keys join the old ones.
    _create(admin_client, job_id, {"stage": "prod", "extra": "1"})
    assert _show(admin_client, job_id) == {**first, "stage": "prod", "extra": "1"}

    # Delete without a value: the key goes whatever its value. With a value: only if it matches.
    deleted = _delete(admin_client, job_id, [TmsTag(key="team"), TmsTag(key="owner", value="someone-else")])
    assert deleted.status_code == 204
    left = _show(admin_client, job_id)
    assert "team" not in left and left["owner"] == "ann@example.com"
    _delete(admin_client, job_id, [TmsTag(key="owner", value="ann@example.com"), TmsTag(key="no-such-key")])
    left = _show(admin_client, job_id)
    assert "owner" not in left
    assert left == {k: v for k, v in {**first, "stage": "prod", "extra": "1"}.items() if k not in ("team", "owner")}

    # At most 20 tags per job: filling up to 20 works, the 21st is refused and nothing changes.
    fill = {f"fill-{i:02d}": str(i) for i in range(20 - len(left))}
    _create(admin_client, job_id, fill)
    full = _show(admin_client, job_id)
    assert len(full) == 20
    error = _error(lambda: _create(admin_client, job_id, {"one-too-many": "x"}))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2788")
    # Overwriting an existing key of a full job is still fine.
    _create(admin_client, job_id, {"fill-00": "changed"})
    assert _show(admin_client, job_id) == {**full, "fill-00": "changed"}


def test_path_spellings_of_the_manuals(admin_client: Any, raw: Raw, unique: Unique) -> None:
    """HWC creates under ``trainJob``; the seed deletes under ``modelarts-trainJob``."""
    (job_id,) = _jobs(admin_client, [unique("spelled")])
    body = {"tags": [{"key": "via", "value": "hwc"}, {"key": "other", "value": "x"}]}
    response = raw("POST", f"/v2/{{project_id}}/trainJob/{job_id}/tags/create", body)
    assert response.status_code == 204, response.text
    assert _show(admin_client, job_id) == {"via": "hwc", "other": "x"}

    response = raw("DELETE", f"/v2/{{project_id}}/modelarts-trainJob/{job_id}/tags/delete", {"tags": [{"key": "via"}]})
    assert response.status_code == 204, response.text
    assert _show(admin_client, job_id) == {"other": "x"}

    # The SDK's own spelling, sent raw, with the DELETE body; a key named twice is no trouble.
    response = raw(
        "DELETE",
        f"/v2/{{project_id}}/modelarts-training-job/{job_id}/tags/delete",
        {"tags": [{"key": "other", "value": "x"}, {"key": "other"}]},
    )
    assert response.status_code == 204, response.text
    assert _show(admin_client, job_id) == {}


def test_unknown_job(admin_client: Any, raw: Raw) -> None:
    missing = str(uuid.uuid4())
    for call in (
        lambda: _create(admin_client, missing, {"k": "v"}),
        lambda: _delete(admin_client, missing, [TmsTag(key="k")]),
        lambda: _show(admin_client, missing),
    ):
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2775")
    response = raw("POST", f"/v2/{{project_id}}/trainJob/{missing}/tags/create", {"tags": [{"key": "k", "value": "v"}]})
    assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.2775")


# --- bad input -------------------------------------------------------------------------------------

BASE = {"base-a": "1", "base-b": "2"}


@pytest.fixture(scope="module")
def based_job(admin_client: Any) -> str:
    """A job that keeps exactly the tags of BASE: each bad request must leave them as they are."""
    (job_id,) = _jobs(admin_client, [f"tag-bad-input-{uuid.uuid4().hex[:8]}"])
    _create(admin_client, job_id, BASE)
    return job_id


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([("_sys_owner", "x")], id="key-starts-sys"),
        pytest.param([(" lead", "x")], id="key-leading-space"),
        pytest.param([("trail ", "x")], id="key-trailing-space"),
        pytest.param([("", "x")], id="key-empty"),
        pytest.param([("k" * 129, "x")], id="key-129"),
        pytest.param([("a#b", "x")], id="key-bad-character"),
        pytest.param([("a/b", "x")], id="key-slash"),
        pytest.param([("key\n", "x")], id="key-newline"),
        pytest.param([("ok", "v" * 256)], id="value-256"),
        pytest.param([("ok", "a#b")], id="value-bad-character"),
        pytest.param([("ok", "a*b")], id="value-star"),
        pytest.param([("ok", "line\n")], id="value-trailing-newline"),
        pytest.param([(f"many-{i:02d}", "x") for i in range(21)], id="21-in-one-request"),
        pytest.param([(f"more-{i:02d}", "x") for i in range(19)], id="19-more-on-top-of-2"),
    ],
)
def test_bad_tags_change_nothing(admin_client: Any, based_job: str, tags: list[tuple[str, str]]) -> None:
    body = [TmsTag(key="fine", value="ok"), *(TmsTag(key=k, value=v) for k, v in tags)]
    error = _error(
        lambda: admin_client.create_train_job_tags(
            CreateTrainJobTagsRequest(training_job_id=based_job, body=CreateTmsTagsRequest(tags=body))
        )
    )
    assert (error.status_code, error.error_code) == (400, "ModelArts.2788"), error.error_msg
    assert _show(admin_client, based_job) == BASE


def test_bad_bodies_change_nothing(admin_client: Any, based_job: str, raw: Raw) -> None:
    path = f"/v2/{{project_id}}/modelarts-training-job/{based_job}/tags/create"
    bodies: list[dict[str, Any] | bytes] = [
        {"tags": []},
        {"tags": [{"key": 1, "value": "x"}]},
        {"tags": [{"key": "k", "value": 2}]},
        {"tags": [{"value": "x"}]},
        {"tags": [{"key": "k", "value": "v", "colour": "red"}]},
        {},
        b"{not json",
    ]
    for body in bodies:
        response = raw("POST", path, body)
        assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.2788"), body
    error = _error(lambda: _delete(admin_client, based_job, [TmsTag(key="_sys_x")]))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2788")
    assert _show(admin_client, based_job) == BASE


# --- the project's tags ----------------------------------------------------------------------------


def test_project_tag_list_aggregates_and_pages(admin_client: Any, unique: Unique) -> None:
    prefix = unique("agg")
    first, second = _jobs(admin_client, [f"{prefix}-1", f"{prefix}-2"])
    k1, k2, k3 = f"{prefix}-k1", f"{prefix}-k2", f"{prefix}-k3"
    _create(admin_client, first, {k1: "x", k2: "shared", k3: ""})
    _create(admin_client, second, {k1: "y", k2: "shared"})

    everything = _project_tags(admin_client)
    assert everything[k1] == ["x", "y"]
    assert everything[k2] == ["shared"]  # one value, though two jobs carry it
    assert everything[k3] == [""]
    keys = list(everything)
    assert keys == sorted(keys) and len(keys) == len(set(keys))

    at = keys.index(k1)
    assert keys[at : at + 3] == [k1, k2, k3]
    assert list(_project_tags(admin_client, limit=1, offset=at)) == [k1]
    assert list(_project_tags(admin_client, limit=2, offset=at + 1)) == [k2, k3]
    assert list(_project_tags(admin_client, offset=at)) == keys[at:]
    assert _project_tags(admin_client, offset=len(keys)) == {}

    # Deleting a tag takes its value out of the list; the last one takes its key.
    _delete(admin_client, first, [TmsTag(key=k1), TmsTag(key=k3)])
    after = _project_tags(admin_client)
    assert after[k1] == ["y"] and k3 not in after and after[k2] == ["shared"]

    pages: list[dict[str, int]] = [{"limit": 0}, {"limit": 1001}, {"offset": -1}]
    for page in pages:
        error = _error(lambda: _project_tags(admin_client, **page))  # noqa: B023 (called at once)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2788"), page


# --- finding jobs by tags --------------------------------------------------------------------------


def test_filter_and_count_by_tags(admin_client: Any, unique: Unique) -> None:
    prefix = unique("find")
    color, size = f"{prefix}-color", f"{prefix}-size"
    red, blue, green, bare = _jobs(admin_client, [f"{prefix}-{n}" for n in ("red", "blue", "green", "bare")])
    _create(admin_client, red, {color: "red", size: "big"})
    _create(admin_client, blue, {color: "blue", size: "big"})
    _create(admin_client, green, {color: "green", size: "small"})
    mine = [Match(key="resource_name", value=prefix)]

    # OR within one key, AND across keys.
    assert _found(admin_client, tags=_multi({color: ["red", "blue"]})) == {red, blue}
    assert _found(admin_client, tags=_multi({color: ["red", "green"], size: ["big"]})) == {red}
    assert _found(admin_client, tags=_multi({color: ["red", "blue", "green"], size: ["small", "big"]})) == {
        red,
        blue,
        green,
    }
    assert _found(admin_client, tags=_multi({color: ["purple"]})) == set()
    assert _found(admin_client, tags=_multi({color: ["red"], f"{prefix}-nothing": []})) == set()
    # No values: any value of the key.
    assert _found(admin_client, tags=_multi({color: []})) == {red, blue, green}

    # Jobs without any tag; the tags filter is then ignored.
    assert _found(admin_client, without_any_tag=True, matches=mine) == {bare}
    assert _found(admin_client, without_any_tag=True, matches=mine, tags=_multi({color: ["red"]})) == {bare}
    # Names: a substring of the job name, with LIKE's wildcards taken literally.
    assert _found(admin_client, matches=mine) == {red, blue, green, bare}
    assert _found(admin_client, matches=[Match(key="resource_name", value=f"{prefix}-gr")]) == {green}
    assert _found(admin_client, matches=[Match(key="resource_name", value=f"{prefix}-GREEN".upper())]) == {green}
    assert _found(admin_client, matches=[Match(key="resource_name", value=f"{prefix}%")]) == set()
    assert _found(admin_client, matches=[Match(key="resource_name", value=prefix.replace("-", "_"))]) == set()
    assert _found(admin_client, matches=mine, tags=_multi({size: ["big"]})) == {red, blue}

    # What each resource carries.
    listed = _find(admin_client, tags=_multi({color: ["red"]}))
    (resource,) = listed.resources
    assert (resource.resource_id, resource.resource_name, resource.workspace_id) == (red, f"{prefix}-red", "0")
    assert resource.resource_detail == {}
    assert {t.key: t.value for t in resource.tags} == {color: "red", size: "big"}
    (untagged,) = _find(
        admin_client, without_any_tag=True, matches=[Match(key="resource_name", value=f"{prefix}-bare")]
    ).resources
    assert untagged.tags == []

    # Paging keeps the total.
    pages = [_find(admin_client, limit=1, offset=i, tags=_multi({color: []})) for i in range(4)]
    assert [p.total_count for p in pages] == [3, 3, 3, 3]
    assert {p.resources[0].resource_id for p in pages[:3]} == {red, blue, green} and pages[3].resources == []

    # Count: the same filters, the same numbers.
    assert _count(admin_client, {color: ["red", "blue"]}) == 2
    assert _count(admin_client, {color: ["red", "green"], size: ["big"]}) == 1
    assert _count(admin_client, {color: []}) == 3
    assert _count(admin_client, without_any_tag=True, matches=mine) == 1
    assert _count(admin_client, matches=mine) == 4
    assert _count(admin_client, {color: ["purple"]}) == 0


def test_filter_by_workspace(admin_client: Any, unique: Unique) -> None:
    prefix = unique("wsfind")
    key = f"{prefix}-k"
    workspace = admin_client.create_workspace(
        CreateWorkspaceRequest(body=CreateWorkspaceReq(name=prefix, auth_type="PUBLIC"))
    )
    (in_default,) = _jobs(admin_client, [f"{prefix}-default"])
    (in_workspace,) = _jobs(admin_client, [f"{prefix}-own"], workspace_id=workspace.id)
    _create(admin_client, in_default, {key: "v"})
    _create(admin_client, in_workspace, {key: "v"})
    tags = _multi({key: ["v"]})

    assert _found(admin_client, tags=tags) == {in_default, in_workspace}
    assert _found(admin_client, tags=tags, workspace_id=workspace.id) == {in_workspace}
    assert _found(admin_client, tags=tags, workspace_id="0") == {in_default}
    (resource,) = _find(admin_client, tags=tags, workspace_id=workspace.id).resources
    assert resource.workspace_id == workspace.id
    assert _count(admin_client, {key: ["v"]}, workspace_id=workspace.id) == 1
    assert _count(admin_client, {key: ["v"]}) == 2
    assert _project_tags(admin_client)[key] == ["v"]

    error = _error(lambda: _found(admin_client, tags=tags, workspace_id=uuid.uuid4().hex))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7005")


def test_bad_filters(admin_client: Any, raw: Raw) -> None:
    eleven_keys = _multi({f"key-{i}": [] for i in range(11)})
    eleven_values = _multi({"key": [str(i) for i in range(11)]})
    bad: list[dict[str, Any]] = [
        {"matches": [Match(key="name", value="x")]},
        {"matches": [Match(key="resource_name", value="")]},
        {"matches": [Match(key="resource_name", value="a"), Match(key="resource_name", value="b")]},
        {"tags": eleven_keys},
        {"tags": eleven_values},
        {"tags": _multi({"key": ["a", "a"]})},
        {"tags": [MutiValueTag(key="key", values=["a"]), MutiValueTag(key="key", values=["b"])]},
    ]
    pages: list[dict[str, int]] = [{"limit": 0}, {"limit": 1001}, {"offset": -1}]
    for options in [*bad, *pages]:
        error = _error(lambda: _find(admin_client, **options))  # noqa: B023 (called at once)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2788"), options
    bad_json: list[dict[str, Any]] = [{"tags": "red"}, {"without_any_tag": "yes"}, {"unknown": 1}]
    for body in bad_json:
        for op in ("filter", "count"):
            response = raw("POST", f"/v2/{{project_id}}/modelarts-training-job/resource-instances/{op}", body)
            assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.2788"), body
