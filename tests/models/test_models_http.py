"""The model registry through signed HTTP (the SDK has no v1 model calls): create, list, show, delete,
and packages that break the contract."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.services.support import (
    Api,
    create_model,
    obs_dir,
    published_model,
    sklearn_config,
    wait_model,
    write_custom_package,
    write_sklearn_package,
)

MODELS = "/v1/{project_id}/models"


def test_create_show_list_and_delete(api: Api, unique: Callable[[str], str]) -> None:
    name = unique("reg")
    source = write_sklearn_package(api.server, "reg-bucket", unique("p"))
    first = published_model(api, name, source, description="first one")
    second = published_model(api, name, f"obs:/{source}", version="1.0.1")
    shown = api.ok("GET", f"{MODELS}/{first}")
    assert shown["model_type"] == "Scikit_Learn" and shown["model_status"] == "published"
    assert shown["model_size"] > 0 and shown["source_location"] == source
    assert json.loads(shown["config"])["model_algorithm"] == "predict_analysis"
    assert json.loads(shown["apis"])[0]["url"] == "/"
    assert json.loads(shown["model_metrics"]) == {"f1": 0.9, "accuracy": 0.95}
    listed = api.ok("GET", f"{MODELS}?model_name={name}&sort_by=model_version&order=asc")
    assert [m["model_version"] for m in listed["models"]] == ["1.0.0", "1.0.1"]
    assert listed["total_count"] == 2
    page = api.ok("GET", f"{MODELS}?model_name={name}&limit=1&offset=1&order=asc")
    assert page["count"] == 1 and page["total_count"] == 2
    exact = api.ok("GET", f"{MODELS}?model_name={name[:-2]}&exact_match=true")
    assert exact["total_count"] == 0
    typed = api.ok("GET", f"{MODELS}?model_name={name}&model_type=scikit_learn&model_status=Published")
    assert typed["total_count"] == 2
    assert api.ok("GET", f"{MODELS}?model_name={name}&not_model_type=Scikit_Learn")["total_count"] == 0
    assert api.ok("GET", f"{MODELS}?model_name={name}&description=first")["total_count"] == 1
    duplicate = api.call("POST", MODELS, {"model_name": name, "model_version": "1.0.0", "source_location": source})
    assert duplicate.status_code == 409 and duplicate.json()["error_code"] == "ModelArts.3002"
    deleted = api.ok("DELETE", f"{MODELS}/{second}?cascade=true")
    assert sorted(deleted["delete_success_list"]) == sorted([first, second])
    assert deleted["delete_failed_list"] == []
    missing = api.call("GET", f"{MODELS}/{first}")
    assert missing.status_code == 404 and missing.json()["error_code"] == "ModelArts.3001"


def test_custom_model_and_runtimes(api: Api, unique: Callable[[str], str]) -> None:
    model_id = published_model(api, unique("cust"), write_custom_package(api.server, "reg-bucket", unique("c")))
    assert api.ok("GET", f"{MODELS}/{model_id}")["model_type"] == "Custom"
    engines = api.ok("GET", f"{MODELS}/ai-engine-runtimes")["engine_runtimes"]
    assert {"Scikit_Learn", "Custom"} <= {e["ai_engine"] for e in engines}
    api.ok("DELETE", f"{MODELS}/{model_id}")


def test_bad_packages_end_failed_with_the_reason(api: Api, unique: Callable[[str], str]) -> None:
    def failed(source: str) -> str:
        model_id = create_model(api, unique("bad"), source)
        model = wait_model(api, model_id, "published", "failed")
        assert model["model_status"] == "failed"
        api.ok("DELETE", f"{MODELS}/{model_id}")
        return str(model["failed_reason"])

    assert "model/ folder" in failed(f"/reg-bucket/{unique('nothing')}/")
    folder = obs_dir(api.server, "reg-bucket", unique("noconf")) / "model"
    folder.mkdir()
    (folder / "model.m").write_bytes(b"x")
    assert "config.json" in failed(f"/reg-bucket/{folder.parent.name}/")
    (folder / "config.json").write_text("{not json")
    assert "not valid JSON" in failed(f"/reg-bucket/{folder.parent.name}/")
    (folder / "config.json").write_text(json.dumps(sklearn_config()))
    (folder / "other.m").write_bytes(b"y")
    assert "More than one Scikit_Learn model file" in failed(f"/reg-bucket/{folder.parent.name}/")
    script_dir = obs_dir(api.server, "reg-bucket", unique("syntax")) / "model"
    script_dir.mkdir()
    (script_dir / "config.json").write_text(json.dumps({"model_type": "Custom"}))
    (script_dir / "customize_service.py").write_text("class Broken(:\n")
    assert "syntax error" in failed(f"/reg-bucket/{script_dir.parent.name}/")
    (script_dir / "customize_service.py").write_text("x = 1\n")
    assert "defines no class" in failed(f"/reg-bucket/{script_dir.parent.name}/")


def test_bad_requests_are_400s(api: Api, unique: Callable[[str], str]) -> None:
    source = write_sklearn_package(api.server, "reg-bucket", unique("p"))
    cases = [
        ({"model_name": "bad name!", "model_version": "1.0.0", "source_location": source}, "ModelArts.3037"),
        ({"model_name": unique("m"), "model_version": "01.0.0", "source_location": source}, "ModelArts.3037"),
        ({"model_name": unique("m"), "model_version": "1.0.0"}, "ModelArts.3036"),
        ({"model_name": unique("m"), "model_version": "1.0.0", "source_location": "/../x"}, "ModelArts.2791"),
        ({"model_name": unique("m"), "model_version": "1.0.0", "source_location": "/reg-bucket/"}, "ModelArts.3017"),
        (
            {
                "model_name": unique("m"),
                "model_version": "1.0.0",
                "source_location": source,
                "model_type": "TensorFlow",
            },
            "ModelArts.3053",
        ),
        (
            {"model_name": unique("m"), "model_version": "1.0.0", "source_location": source, "model_metrics": "{x"},
            "ModelArts.3037",
        ),
        (
            {
                "model_name": unique("m"),
                "model_version": "1.0.0",
                "source_location": source,
                "dependencies": [{"installer": "pip", "packages": [{"package_name": "a", "restraint": "NEWEST"}]}],
            },
            "ModelArts.3040",
        ),
        ({"model_version": "1.0.0"}, "ModelArts.3037"),
    ]
    for body, code in cases:
        response = api.call("POST", MODELS, body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["error_code"] == code, (body, response.text)
    not_json = api.call("POST", MODELS, b"{oops")
    assert not_json.status_code == 400
    both = api.call("GET", f"{MODELS}?model_type=Custom&not_model_type=Scikit_Learn")
    assert both.status_code == 400
    assert api.call("DELETE", f"{MODELS}/nope").json()["error_code"] == "ModelArts.3001"
