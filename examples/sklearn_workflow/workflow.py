"""Train, register, deploy and call a scikit-learn model in one OpenArts workflow, through the official SDK.

    python examples/sklearn_workflow/workflow.py --endpoint http://127.0.0.1:8000 \\
        --credentials "$OPENARTS_DATA_DIR/admin-credentials.json" \\
        --caller wf-caller --caller-password '...' --bucket examples

Steps: ``train`` (a job writing a model package to its output), ``register`` (a model step over that
output), ``deploy`` (a service step over the model) and ``call`` (a job that calls the service's
``access_address`` with the caller's token). See README.md; :func:`definition` is also what the tests run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
CODE = HERE / "code"
FLAVOR = "modelarts.vm.cpu.2u"
# The service's share of the capacity pool: small, so the calling job (2 CPUs) runs beside it on a
# 3-CPU machine.
SERVICE_SPEC = {"cpu": 0.5, "memory": 1024}
ENDED = ("completed", "stopped", "abnormal")


def _job(name: str, command: str, code_dir: str, **algorithm: Any) -> dict[str, Any]:
    return {
        "kind": "job",
        "metadata": {"name": name},
        "algorithm": {"code_dir": code_dir, "command": command, **algorithm},
        "spec": {"resource": {"flavor_id": FLAVOR, "node_count": 1}},
    }


def definition(name: str, root: str, model_name: str) -> dict[str, Any]:
    """The workflow: ``root`` is an object-storage folder (``/bucket/prefix``) holding ``code/`` (this
    example's code folder) and ``credentials/token``; outputs go under it too."""
    root = root.rstrip("/")
    code = f"{root}/code/"
    return {
        "name": name,
        "description": "train, register, deploy and call a scikit-learn model",
        "steps": [
            {
                "name": "train",
                "type": "job",
                "properties": _job("sklearn-train", "python train.py", code),
                "outputs": [{"name": "train_output", "type": "obs", "config": {"obs_url": f"{root}/output/"}}],
            },
            {
                "name": "register",
                "type": "model",
                "title": "model release",
                "inputs": [{"name": "model_input", "type": "obs", "data": "$ref/consumptions/train/train_output"}],
                "outputs": [{"name": "model_output", "type": "model"}],
                "properties": {"model_name": model_name, "model_type": "Scikit_Learn"},
                "depend_steps": ["train"],
            },
            {
                "name": "deploy",
                "type": "service",
                "inputs": [{"name": "model", "type": "model", "data": "$ref/consumptions/register/model_output"}],
                "outputs": [{"name": "service_output", "type": "service"}],
                "properties": {"specification": "custom", "custom_spec": SERVICE_SPEC, "schedule": 1},
                "depend_steps": ["register"],
            },
            {
                "name": "call",
                "type": "job",
                "properties": _job(
                    "sklearn-call",
                    "python call_service.py",
                    code,
                    environments={"INFER_ADDRESS": "$ref/consumptions/deploy/service_output/access_address"},
                ),
                "inputs": [{"name": "credentials", "type": "obs", "data": f"{root}/credentials/"}],
                "outputs": [{"name": "result", "type": "obs", "config": {"obs_url": f"{root}/result/"}}],
                "depend_steps": ["deploy"],
            },
        ],
    }


# --- running it against a server ---------------------------------------------------------------------------


def _token(endpoint: str, user: dict[str, str], password: str) -> str:
    """An IAM token of the caller (POST /v3/auth/tokens): it expires, unlike an access key's secret."""
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": user["name"], "password": password, "domain": {"name": user["domain"]}}},
            },
            "scope": {"project": {"id": user["project_id"]}},
        }
    }
    response = httpx.post(endpoint.rstrip("/") + "/v3/auth/tokens", json=body, timeout=30)
    response.raise_for_status()
    return str(response.headers["X-Subject-Token"])


def _upload(local: Path, obs_url: str) -> None:
    """``openarts obs cp`` (the server's own object store: run with the server's OPENARTS_* settings)."""
    subprocess.run(["openarts", "obs", "cp", str(local), "obs:/" + obs_url], check=True)  # noqa: S603,S607


def delete_service(endpoint: str, creds: dict[str, str], service_id: str) -> None:
    """``DELETE /v1/{project_id}/services/{id}``, signed with the SDK's signer (its client has no v1 service
    calls)."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    scheme, _, host = endpoint.rstrip("/").partition("://")
    path = f"/v1/{creds['project_id']}/services/{service_id}"
    request = SdkRequest(
        method="DELETE",
        schema=scheme,
        host=host,
        resource_path=path,
        query_params=[],
        header_params={"Content-Type": "application/json", "X-Project-Id": creds["project_id"]},
        body="",
    )
    Signer(BasicCredentials(creds["access_key"], creds["secret_key"], creds["project_id"])).sign(request)
    httpx.delete(endpoint.rstrip("/") + path, headers=dict(request.header_params), timeout=30).raise_for_status()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--endpoint", default="http://127.0.0.1:8000")
    parser.add_argument("--credentials", required=True, help="a JSON file with project_id, access_key, secret_key")
    parser.add_argument("--caller", required=True, help="the IAM user whose token the calling step uses")
    parser.add_argument("--caller-password", default=os.environ.get("CALLER_PASSWORD", ""))
    parser.add_argument("--caller-domain", help="the caller's domain (default: the admin's)")
    parser.add_argument("--bucket", default="examples")
    parser.add_argument("--keep-service", action="store_true", help="leave the service running at the end")
    args = parser.parse_args()

    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkmodelarts.v1 import (
        CreateWorkflowExecutionRequest,
        CreateWorkflowRequest,
        ModelArtsClient,
        ShowWorkflowExecutionRequest,
    )

    creds = json.loads(Path(args.credentials).read_text())
    client = (
        ModelArtsClient.new_builder()
        .with_credentials(BasicCredentials(creds["access_key"], creds["secret_key"], creds["project_id"]))
        .with_endpoint(args.endpoint)
        .build()
    )
    tag = time.strftime("%Y%m%d%H%M%S")
    root = f"/{args.bucket}/sklearn-workflow-{tag}"
    caller = {
        "name": args.caller,
        "domain": args.caller_domain or creds.get("domain_name", ""),
        "project_id": creds["project_id"],
    }
    token = _token(args.endpoint, caller, args.caller_password)
    _upload(CODE, f"{root}/code/")
    with tempfile.TemporaryDirectory() as folder:
        token_file = Path(folder) / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        _upload(token_file, f"{root}/credentials/token")

    body = definition(f"sklearn-workflow-{tag}", root, f"iris-{tag}")
    workflow = client.create_workflow(CreateWorkflowRequest(body=body))
    execution = client.create_workflow_execution(
        CreateWorkflowExecutionRequest(workflow_id=workflow.workflow_id, body={})
    )
    print(f"workflow {workflow.workflow_id}, execution {execution.execution_id}")
    while True:
        shown = client.show_workflow_execution(
            ShowWorkflowExecutionRequest(workflow_id=workflow.workflow_id, execution_id=execution.execution_id)
        )
        print(shown.status, {step.step_name: step.status for step in shown.steps_execution or []})
        if shown.status in ENDED:
            break
        time.sleep(2)
    for step in shown.steps_execution or []:
        if step.error_info and step.error_info.error_message:
            print(f"{step.step_name}: {step.error_info.error_message}", file=sys.stderr)
    deploy = next((s for s in shown.steps_execution or [] if s.step_name == "deploy"), None)
    if deploy is not None and deploy.instance_id and not args.keep_service:
        service_id = json.loads(deploy.instance_id)["service_id"]
        print(f"deleting service {service_id} (--keep-service leaves it running)")
        delete_service(args.endpoint, creds, service_id)
    print(f"prediction: obs:/{root}/result/prediction.json")
    return 0 if shown.status == "completed" else 1


if __name__ == "__main__":
    sys.exit(main())
