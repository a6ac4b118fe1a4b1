"""Every algorithm endpoint through the official SDK against a live server: success and bad input,
plus the service functions training jobs call (``get_algorithm``, ``algorithm_to_wire``)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkmodelarts.v1 import (
    AlgoConfigs,
    Algorithm,
    AlgorithmAdvancedConfig,
    AlgorithmCreateEngine,
    AlgorithmCreateInput,
    AlgorithmCreateOutput,
    AlgorithmJobConfig,
    AlgorithmMetadata,
    AutoSearch,
    AutoSearchAlgoConfigParameter,
    ChangeAlgorithmRequest,
    CreateAlgorithmRequest,
    CreateWorkspaceReq,
    CreateWorkspaceRequest,
    DeleteAlgorithmRequest,
    DeleteWorkspaceRequest,
    ListAlgorithmsRequest,
    Parameters,
    ParametersConstraint,
    RemoteConstraint,
    ResourceRequirement,
    RewardAttrs,
    SearchParams,
    ShowAlgorithmByUuidRequest,
)

from openarts.compute.engines import default_engine
from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.core.identity.service import Principal, principal_for_access_key
from openarts.training.algorithms import service
from tests.conftest import InProcess
from tests.training.conftest import Raw

Unique = Callable[[str], str]
ENGINE = default_engine(Settings.from_env({}))
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def _engine(**fields: Any) -> AlgorithmCreateEngine:
    return AlgorithmCreateEngine(
        **(fields or {"engine_name": ENGINE.engine_name, "engine_version": ENGINE.engine_version})
    )


def _job_config(**fields: Any) -> AlgorithmJobConfig:
    defaults: dict[str, Any] = {
        "code_dir": "/algo-bucket/code/",
        "boot_file": "/algo-bucket/code/train.py",
        "engine": _engine(),
    }
    return AlgorithmJobConfig(**{**defaults, **fields})


def _body(name: str, *, metadata: dict[str, Any] | None = None, **job_config: Any) -> Algorithm:
    return Algorithm(metadata=AlgorithmMetadata(name=name, **(metadata or {})), job_config=_job_config(**job_config))


def _create(client: Any, body: Algorithm) -> Any:
    return client.create_algorithm(CreateAlgorithmRequest(body=body))


def _show(client: Any, algorithm_id: str) -> Any:
    return client.show_algorithm_by_uuid(ShowAlgorithmByUuidRequest(algorithm_id=algorithm_id))


def _error(call: Callable[[], Any]) -> ClientRequestException:
    with pytest.raises(ClientRequestException) as caught:
        call()
    return caught.value


def _workspace(client: Any, name: str, auth_type: str = "PUBLIC") -> Any:
    body = CreateWorkspaceReq(name=name, auth_type=auth_type)
    return client.create_workspace(CreateWorkspaceRequest(body=body))


def _full_body(name: str) -> Algorithm:
    return Algorithm(
        metadata=AlgorithmMetadata(name=name, description="trains a forest"),
        job_config=AlgorithmJobConfig(
            code_dir="obs://algo-bucket/forest/",
            boot_file="obs://algo-bucket/forest/src/train.py",
            parameters=[
                Parameters(name="epochs", value="10"),
                Parameters(
                    name="learning_rate",
                    value="0.1",
                    description="step size",
                    constraint=ParametersConstraint(
                        type="Float", editable=True, required=False, valid_range=["0", "1"]
                    ),
                ),
            ],
            inputs=[
                AlgorithmCreateInput(
                    name="data_url",
                    description="data source",
                    remote_constraints=[RemoteConstraint(data_type="obs", attributes=[{"data_format": "csv"}])],
                )
            ],
            outputs=[AlgorithmCreateOutput(name="train_url", description="model output")],
            engine=_engine(),
            parameters_customization=True,
        ),
        resource_requirements=[ResourceRequirement(key="flavor_type", values=["CPU"], operator="in")],
        advanced_config=AlgorithmAdvancedConfig(
            auto_search=AutoSearch(
                reward_attrs=[RewardAttrs(name="acc", mode="max", regex="acc=([0-9.]+)")],
                search_params=[
                    SearchParams(name="learning_rate", param_type="continuous", lower_bound="0.01", upper_bound="0.5")
                ],
                algo_configs=[
                    AlgoConfigs(
                        name="tpe_search",
                        params=[AutoSearchAlgoConfigParameter(key="num_samples", value="5", type="Integer")],
                    )
                ],
            )
        ),
    )


# --- create, show, change, delete --------------------------------------------------------------


def test_algorithm_lifecycle(admin_client: Any, server: Any, unique: Unique) -> None:
    name = unique("forest")
    created = _create(admin_client, _full_body(name))
    assert created.status_code == 201
    metadata = created.metadata
    assert UUID4.match(metadata.id)
    assert (metadata.name, metadata.description, metadata.workspace_id) == (name, "trains a forest", "0")
    assert metadata.user_name == "admin" and metadata.domain_id and metadata.ai_project == "default-ai-project"
    assert metadata.create_time == metadata.update_time > 0
    assert metadata.is_valid is True and metadata.source == "custom"

    config = created.job_config
    assert (config.code_dir, config.boot_file, config.command) == (
        "obs://algo-bucket/forest/",
        "obs://algo-bucket/forest/src/train.py",
        "",
    )
    engine = config.engine
    assert (engine.engine_id, engine.engine_name, engine.engine_version) == (
        ENGINE.engine_id,
        ENGINE.engine_name,
        ENGINE.engine_version,
    )
    epochs, rate = config.parameters
    assert (epochs.name, epochs.value, epochs.description) == ("epochs", "10", "")
    # Constraint fields the caller left out take ModelArts' defaults; given ones are kept.
    assert epochs.constraint.to_dict() == {
        "type": "String",
        "editable": True,
        "required": True,
        "sensitive": False,
        "valid_type": "None",
        "valid_range": [],
    }
    assert (rate.constraint.type, rate.constraint.required, rate.constraint.valid_range) == ("Float", False, ["0", "1"])
    assert config.parameters_customization is True
    assert [(i.name, i.description) for i in config.inputs] == [("data_url", "data source")]
    assert config.inputs[0].remote_constraints[0].attributes == [{"data_format": "csv"}]
    assert [(o.name, o.description) for o in config.outputs] == [("train_url", "model output")]
    assert [(r.key, r.value, r.operator) for r in created.resource_requirements] == [("flavor_type", ["CPU"], "in")]
    auto_search = created.advanced_config.auto_search
    assert auto_search.reward_attrs[0].name == "acc"
    assert auto_search.algo_configs[0].params[0].value == "5"

    shown = _show(admin_client, metadata.id)
    assert shown.status_code == 200
    assert shown.metadata.to_dict() == metadata.to_dict()
    assert shown.job_config.to_dict() == config.to_dict()

    # A change replaces the sections it names and keeps the others.
    change = Algorithm(
        metadata=AlgorithmMetadata(name=name, description="now with more trees"),
        job_config=_job_config(
            code_dir="/algo-bucket/forest2", boot_file="/algo-bucket/forest2/train.py", parameters=[]
        ),
        advanced_config=AlgorithmAdvancedConfig(
            auto_search=AutoSearch(reward_attrs=[], search_params=[], algo_configs=[])
        ),
    )
    changed = admin_client.change_algorithm(ChangeAlgorithmRequest(algorithm_id=metadata.id, body=change))
    assert changed.status_code == 201
    assert changed.metadata.description == "now with more trees"
    assert changed.metadata.update_time >= metadata.create_time
    assert (changed.job_config.code_dir, changed.job_config.parameters) == ("/algo-bucket/forest2", [])
    assert changed.job_config.inputs == []
    assert changed.advanced_config.auto_search is None  # cleared by empty lists
    assert changed.resource_requirements[0].value == ["CPU"]  # not named: kept
    assert _show(admin_client, metadata.id).job_config.boot_file == "/algo-bucket/forest2/train.py"

    deleted = admin_client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=metadata.id))
    assert deleted.status_code == 202
    error = _error(lambda: _show(admin_client, metadata.id))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2755")


def test_command_algorithms_and_engine_by_id(admin_client: Any, unique: Unique) -> None:
    body = Algorithm(
        metadata=AlgorithmMetadata(name=unique("cmd")),
        job_config=AlgorithmJobConfig(command="python -c pass", engine=_engine(engine_id=ENGINE.engine_id)),
    )
    created = _create(admin_client, body)
    assert created.job_config.command == "python -c pass"
    assert (created.job_config.code_dir, created.job_config.boot_file) == ("", "")
    assert created.job_config.engine.engine_name == ENGINE.engine_name
    # A custom image with its start command is recorded as it is.
    image = Algorithm(
        metadata=AlgorithmMetadata(name=unique("img")),
        job_config=AlgorithmJobConfig(command="bash run.sh", engine=_engine(image_url="swr.example/me/train:1")),
    )
    assert _create(admin_client, image).job_config.engine.image_url == "swr.example/me/train:1"
    # Engine names match without regard to case.
    lower = _body(unique("lower"), engine=_engine(engine_name=ENGINE.engine_name.lower()))
    assert _create(admin_client, lower).job_config.engine.engine_id == ENGINE.engine_id


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"metadata": {"name": "x" * 65}}, "ModelArts.2788"),
        ({"metadata": {"name": "bad name"}}, "ModelArts.2788"),
        ({"metadata": {"description": "d" * 257}}, "ModelArts.2788"),
        ({"engine": AlgorithmCreateEngine(engine_name="TensorFlow", engine_version="1.0")}, "ModelArts.2780"),
        ({"engine": AlgorithmCreateEngine(engine_id="no-such-engine")}, "ModelArts.2780"),
        ({"engine": AlgorithmCreateEngine()}, "ModelArts.2780"),
        ({"engine": AlgorithmCreateEngine(image_url="swr.example/x:1")}, "ModelArts.2806"),
        ({"code_dir": "algo-bucket/code/"}, "ModelArts.2791"),
        ({"code_dir": "/algo-bucket/../etc/", "boot_file": "/algo-bucket/../etc/x.py"}, "ModelArts.2791"),
        ({"code_dir": "s3://algo-bucket/code/"}, "ModelArts.2791"),
        ({"boot_file": "/algo-bucket/other/train.py"}, "ModelArts.2758"),
        ({"boot_file": "/algo-bucket/code/"}, "ModelArts.2758"),
        ({"boot_file": None}, "ModelArts.2758"),
        ({"code_dir": None}, "ModelArts.2757"),
        ({"code_dir": None, "boot_file": None}, "ModelArts.2788"),
        ({"parameters": [Parameters(name="lr"), Parameters(name="lr")]}, "ModelArts.2788"),
        ({"parameters": [Parameters(name="--lr")]}, "ModelArts.2788"),
        ({"parameters": [Parameters(name="lr", value=1)]}, "ModelArts.2788"),
        ({"parameters_customization": "yes"}, "ModelArts.2788"),
        (
            {"inputs": [AlgorithmCreateInput(name="data")], "outputs": [AlgorithmCreateOutput(name="data")]},
            "ModelArts.2753",
        ),
        ({"outputs": [AlgorithmCreateOutput(description="no name")]}, "ModelArts.2788"),
        ({"metadata": {"workspace_id": "f" * 32}}, "ModelArts.7005"),
    ],
)
def test_create_refuses_bad_input(admin_client: Any, unique: Unique, change: dict[str, Any], code: str) -> None:
    fields = dict(change)
    metadata = {"name": unique("bad"), **fields.pop("metadata", {})}
    name = metadata.pop("name")
    body = _body(name, metadata=metadata, **fields)
    before = admin_client.list_algorithms(ListAlgorithmsRequest(workspace_id="0")).total
    error = _error(lambda: _create(admin_client, body))
    assert (error.status_code, error.error_code) == (400, code)
    assert error.error_msg
    assert admin_client.list_algorithms(ListAlgorithmsRequest(workspace_id="0")).total == before  # nothing half-made


@pytest.mark.parametrize(
    "body",
    [
        {"metadata": {"name": "ok"}},  # no job_config
        {"job_config": {"command": "x", "engine": {"image_url": "i"}}},  # no metadata
        {"metadata": {"name": "ok", "colour": "red"}, "job_config": {"command": "x", "engine": {"image_url": "i"}}},
        {"metadata": {"name": "ok"}, "job_config": {"command": "x", "engine": {"image_url": "i"}, "extra": 1}},
        {"metadata": {"name": 7}, "job_config": {"command": "x", "engine": {"image_url": "i"}}},
        {"metadata": {"name": "ok"}, "job_config": {"command": ["x"], "engine": {"image_url": "i"}}},
        {"metadata": {"name": "ok"}, "job_config": {"command": "x"}},  # no engine
        {
            "metadata": {"name": "ok"},
            "job_config": {"command": "x", "engine": {"image_url": "i"}},
            "resource_requirements": [{"key": "flavor_type", "values": ["TPU"]}],
        },
        {
            "metadata": {"name": "ok"},
            "job_config": {"command": "x", "engine": {"image_url": "i"}},
            "resource_requirements": [{"key": "flavor_type", "values": ["CPU"], "operator": "not"}],
        },
        {
            "metadata": {"name": "ok"},
            "job_config": {"command": "x", "engine": {"image_url": "i"}, "environments": {"1BAD": "x"}},
        },
    ],
)
def test_malformed_bodies_are_2788(raw: Raw, body: dict[str, Any]) -> None:
    response = raw("POST", "/v2/{project_id}/algorithms", body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.2788"
    assert response.headers["x-request-id"]


def test_invalid_json_is_refused(raw: Raw) -> None:
    response = raw("POST", "/v2/{project_id}/algorithms", b'{"metadata": ')
    assert response.status_code == 400
    assert response.json()["error_code"] == "ModelArts.2788"


def test_openarts_extensions_are_kept(raw: Raw, unique: Unique) -> None:
    """Environments, default data locations, access methods and tags travel with the algorithm."""
    body: dict[str, Any] = {
        "metadata": {"name": unique("ext"), "tags": [{"key": "team", "value": "ml"}], "id": 5},
        "job_config": {
            "command": "python -m train",
            "engine": {"engine_id": ENGINE.engine_id},
            "environments": {"MODE": "fast"},
            "inputs": [{"name": "data", "access_method": "env", "remote": {"obs": {"obs_url": "/algo-bucket/data/"}}}],
            "outputs": [{"name": "model", "remote": {"obs": {"obs_url": "obs://algo-bucket/out/"}}}],
        },
    }
    response = raw("POST", "/v2/{project_id}/algorithms", body)
    assert response.status_code == 201, response.text
    payload = response.json()
    assert payload["metadata"]["id"] != 5 and payload["metadata"]["tags"] == [{"key": "team", "value": "ml"}]
    assert payload["job_config"]["environments"] == {"MODE": "fast"}
    assert payload["job_config"]["inputs"] == [
        {
            "name": "data",
            "description": "",
            "access_method": "env",
            "remote": {"obs": {"obs_url": "/algo-bucket/data/"}},
        }
    ]
    bad = {**body, "metadata": {"name": unique("ext2")}}
    bad["job_config"] = {**body["job_config"], "outputs": [{"name": "m", "remote": {"obs": {"obs_url": "/x/"}}}]}
    response = raw("POST", "/v2/{project_id}/algorithms", bad)
    assert (response.status_code, response.json()["error_code"]) == (400, "ModelArts.2791")


def test_duplicate_names(admin_client: Any, unique: Unique) -> None:
    name = unique("dup")
    _create(admin_client, _body(name))
    error = _error(lambda: _create(admin_client, _body(name)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2751")
    # Names are unique per workspace: another workspace may reuse it.
    workspace = _workspace(admin_client, unique("algos-ws"))
    other = _create(admin_client, _body(name, metadata={"workspace_id": workspace.id}))
    assert other.metadata.workspace_id == workspace.id


def test_change_rules(admin_client: Any, unique: Unique) -> None:
    created = _create(admin_client, _body(unique("rules")))
    algorithm_id = created.metadata.id

    def change(body: Algorithm) -> Any:
        return admin_client.change_algorithm(ChangeAlgorithmRequest(algorithm_id=algorithm_id, body=body))

    renamed = Algorithm(metadata=AlgorithmMetadata(name=unique("renamed")))
    assert _error(lambda: change(renamed)).error_code == "ModelArts.2788"
    moved = Algorithm(metadata=AlgorithmMetadata(name=created.metadata.name, workspace_id="f" * 32))
    assert _error(lambda: change(moved)).error_code == "ModelArts.2788"
    broken = Algorithm(
        metadata=AlgorithmMetadata(name=created.metadata.name, description="half"),
        job_config=_job_config(boot_file="/elsewhere/train.py"),
    )
    assert _error(lambda: change(broken)).error_code == "ModelArts.2758"
    shown = _show(admin_client, algorithm_id)
    assert (shown.metadata.description, shown.job_config.boot_file) == ("", "/algo-bucket/code/train.py")
    # Only the description: the rest stays.
    described = change(Algorithm(metadata=AlgorithmMetadata(name=created.metadata.name, description="just this")))
    assert described.metadata.description == "just this"
    assert described.job_config.to_dict() == created.job_config.to_dict()


def test_unknown_algorithms(admin_client: Any) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    calls: list[Callable[[], Any]] = [
        lambda: _show(admin_client, missing),
        lambda: admin_client.change_algorithm(
            ChangeAlgorithmRequest(algorithm_id=missing, body=Algorithm(metadata=AlgorithmMetadata(name="x")))
        ),
        lambda: admin_client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=missing)),
        lambda: _show(admin_client, "not-a-uuid"),
    ]
    for call in calls:
        error = _error(call)
        assert (error.status_code, error.error_code) == (400, "ModelArts.2755")


# --- list -------------------------------------------------------------------------------------


def test_list_filters_sorts_and_pages(admin_client: Any, unique: Unique) -> None:
    workspace = _workspace(admin_client, unique("algo-list"))
    tag = unique("lst")
    names = [f"{tag}-a", f"{tag}-c", f"{tag}-b"]
    for name in names:
        _create(admin_client, _body(name, metadata={"workspace_id": workspace.id}))
    _create(admin_client, _body(unique("other"), metadata={"workspace_id": workspace.id}))

    def listed(**query: Any) -> Any:
        return admin_client.list_algorithms(ListAlgorithmsRequest(workspace_id=workspace.id, **query))

    everything = listed()
    assert (everything.total, everything.count, len(everything.items)) == (4, 4, 4)
    assert (everything.limit, everything.offset, everything.sort_by, everything.order) == (10, 0, "create_time", "desc")
    assert everything.group_by == ""
    assert [a.metadata.name for a in everything.items][1:] == names[::-1]  # newest first

    matching = listed(searches=f"name:{tag.upper()}", sort_by="name", order="asc")
    assert (matching.total, matching.count) == (4, 3)  # total: the whole scope; count: the matches
    assert [a.metadata.name for a in matching.items] == sorted(names)
    page = listed(searches=f"name:{tag}", sort_by="name", order="desc", offset=1, limit=1)
    assert [a.metadata.name for a in page.items] == [f"{tag}-b"]
    assert (page.limit, page.offset) == (1, 1)
    assert listed(searches="name:%").count == 0  # a literal substring, not a pattern
    assert listed(offset=10).items == []
    by_update = listed(sort_by="update_time", order="asc")
    assert [a.metadata.name for a in by_update.items][:3] == names

    # Without workspace_id: every workspace the caller may use.
    anywhere = admin_client.list_algorithms(ListAlgorithmsRequest(searches=f"name:{tag}", limit=50))
    assert anywhere.count == 3


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ({"limit": 0}, "ModelArts.2788"),
        ({"limit": 51}, "ModelArts.2788"),
        ({"offset": -1}, "ModelArts.2788"),
        ({"order": "up"}, "ModelArts.2788"),
        ({"sort_by": "owner"}, "ModelArts.2790"),
        ({"searches": "engine:pytorch"}, "ModelArts.2789"),
        ({"searches": "justaname"}, "ModelArts.2788"),
        ({"group_by": "engine"}, "ModelArts.2788"),
        ({"workspace_id": "f" * 32}, "ModelArts.7005"),
    ],
)
def test_list_refuses_bad_queries(admin_client: Any, query: dict[str, Any], code: str) -> None:
    error = _error(lambda: admin_client.list_algorithms(ListAlgorithmsRequest(**query)))
    assert (error.status_code, error.error_code) == (400, code)


# --- access rules -----------------------------------------------------------------------------


def test_private_workspaces_are_their_owners(admin_client: Any, member_client: Any, unique: Unique) -> None:
    private = _workspace(admin_client, unique("algo-private"), auth_type="PRIVATE")
    created = _create(admin_client, _body(unique("secret"), metadata={"workspace_id": private.id}))
    algorithm_id = created.metadata.id
    denied: list[Callable[[], Any]] = [
        lambda: _show(member_client, algorithm_id),
        lambda: member_client.change_algorithm(
            ChangeAlgorithmRequest(algorithm_id=algorithm_id, body=Algorithm(metadata=AlgorithmMetadata(name="x")))
        ),
        lambda: member_client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=algorithm_id)),
        lambda: _create(member_client, _body(unique("intruder"), metadata={"workspace_id": private.id})),
        lambda: member_client.list_algorithms(ListAlgorithmsRequest(workspace_id=private.id)),
    ]
    for call in denied:
        error = _error(call)
        assert (error.status_code, error.error_code) == (403, "ModelArts.0112")
    listed = member_client.list_algorithms(ListAlgorithmsRequest(searches=f"name:{created.metadata.name}"))
    assert (listed.total, listed.count, listed.items) == (listed.total, 0, [])
    assert _show(admin_client, algorithm_id).metadata.id == algorithm_id

    # The default workspace is PUBLIC: a member works there, also on the admin's algorithms.
    public = _create(admin_client, _body(unique("shared")))
    assert _show(member_client, public.metadata.id).metadata.user_name == "admin"
    mine = _create(member_client, _body(unique("mine")))
    assert mine.metadata.user_name != "admin"


def test_other_projects_are_out_of_reach(admin_client: Any, outsider_client: Any, unique: Unique) -> None:
    created = _create(admin_client, _body(unique("home")))
    error = _error(lambda: _show(outsider_client, created.metadata.id))
    assert (error.status_code, error.error_code) == (400, "ModelArts.2755")
    error = _error(lambda: outsider_client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=created.metadata.id)))
    assert error.error_code == "ModelArts.2755"
    assert outsider_client.list_algorithms(ListAlgorithmsRequest(searches=f"name:{created.metadata.name}")).count == 0
    assert _show(admin_client, created.metadata.id).metadata.id == created.metadata.id


def test_workspace_holding_algorithms_cannot_be_deleted(admin_client: Any, unique: Unique) -> None:
    workspace = _workspace(admin_client, unique("algo-holder"))
    created = _create(admin_client, _body(unique("held"), metadata={"workspace_id": workspace.id}))
    error = _error(lambda: admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace.id)))
    assert (error.status_code, error.error_code) == (400, "ModelArts.7004")
    assert "1 algorithms" in error.error_msg
    admin_client.delete_algorithm(DeleteAlgorithmRequest(algorithm_id=created.metadata.id))
    admin_client.delete_workspace(DeleteWorkspaceRequest(workspace_id=workspace.id))


# --- what training jobs call ------------------------------------------------------------------


def _create_in_process(inprocess: InProcess, body: dict[str, Any], creds: dict[str, Any] | None = None) -> str:
    path = f"/v2/{(creds or inprocess.admin)['project_id']}/algorithms"
    response = inprocess.signed("POST", path, body=body, creds=creds)
    assert response.status_code == 201, response.text
    algorithm_id: str = response.json()["metadata"]["id"]
    return algorithm_id


def test_get_algorithm_and_its_job_echo(inprocess: InProcess) -> None:
    body = {
        "metadata": {"name": "echo"},
        "job_config": {
            "code_dir": "/b-k-t/code/",
            "boot_file": "/b-k-t/code/main.py",
            "engine": {"engine_id": ENGINE.engine_id},
            "parameters": [{"name": "lr", "value": "0.1", "constraint": {"required": False}}],
            "inputs": [{"name": "data", "remote_constraints": [{"data_type": "obs"}]}],
            "outputs": [{"name": "model", "remote": {"obs": {"obs_url": "/b-k-t/out/"}}}],
            "environments": {"A": "1"},
        },
    }
    algorithm_id = _create_in_process(inprocess, body)
    member = inprocess.create_user("jobs-member")
    principal_admin = _principal(inprocess, inprocess.admin)
    with inprocess.db.read() as session:
        algorithm = service.get_algorithm(session, principal_admin, algorithm_id)
        echo = service.algorithm_to_wire(algorithm)
        with pytest.raises(ApiError) as caught:
            service.get_algorithm(session, principal_admin, "00000000-0000-4000-8000-000000000000")
        assert caught.value.code == "ModelArts.2755" and caught.value.solution
        assert service.get_algorithm(session, _principal(inprocess, member), algorithm_id).id == algorithm_id
    assert echo == {
        "id": algorithm_id,
        "name": "echo",
        "code_dir": "/b-k-t/code/",
        "boot_file": "/b-k-t/code/main.py",
        "engine": {
            "engine_id": ENGINE.engine_id,
            "engine_name": ENGINE.engine_name,
            "engine_version": ENGINE.engine_version,
        },
        "parameters": [
            {
                "name": "lr",
                "value": "0.1",
                "description": "",
                "constraint": {
                    "type": "String",
                    "editable": True,
                    "required": False,
                    "sensitive": False,
                    "valid_type": "None",
                    "valid_range": [],
                },
                "i18n_description": None,
            }
        ],
        "inputs": [{"name": "data", "description": ""}],
        "outputs": [{"name": "model", "description": "", "remote": {"obs": {"obs_url": "/b-k-t/out/"}}}],
        "environments": {"A": "1"},
        "policies": {},
    }


def test_get_algorithm_hides_what_the_caller_cannot_use(inprocess: InProcess) -> None:
    admin = inprocess.admin
    response = inprocess.signed(
        "POST", f"/v1/{admin['project_id']}/workspaces", body={"name": "hidden-ws", "auth_type": "PRIVATE"}
    )
    workspace_id = response.json()["id"]
    body = {
        "metadata": {"name": "hidden", "workspace_id": workspace_id},
        "job_config": {"command": "python -c pass", "engine": {"engine_id": ENGINE.engine_id}},
    }
    algorithm_id = _create_in_process(inprocess, body)
    member = inprocess.create_user("nosy")
    with inprocess.db.read() as session, pytest.raises(ApiError) as caught:
        service.get_algorithm(session, _principal(inprocess, member), algorithm_id)
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.2755")


def _principal(inprocess: InProcess, creds: dict[str, Any]) -> Principal:
    found = principal_for_access_key(inprocess.db, creds["access_key"])
    assert found is not None
    return found[0]
