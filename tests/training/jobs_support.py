"""Building and watching training jobs through the SDK, and files in the server's object store."""

from __future__ import annotations

import time
from typing import Any

from huaweicloudsdkmodelarts.v1 import (
    CreateTrainingJobRequest,
    Input,
    InputDataInfo,
    InputDataInfoObs,
    Job,
    JobAlgorithm,
    JobMetadata,
    Output,
    Parameters,
    Remote,
    RemoteObs,
    ShowTrainingJobDetailsRequest,
    Spec,
    SpecResource,
)

from openarts.config import Settings
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore
from tests.support.server import LiveServer

FLAVOR = "modelarts.vm.cpu.2u"
ENDED = ("Completed", "Failed", "Terminated", "Abnormal")


def store_of(server: LiveServer) -> ObjectStore:
    return ObjectStore(Settings.from_env({"OPENARTS_DATA_DIR": str(server.data_dir)}))


def put(server: LiveServer, url: str, text: str) -> None:
    store_of(server).write_bytes(parse_obs_url(url), text.encode())


def get(server: LiveServer, url: str) -> str:
    return get_bytes(server, url).decode()


def get_bytes(server: LiveServer, url: str) -> bytes:
    return store_of(server).read_bytes(parse_obs_url(url))


def job(
    name: str,
    *,
    code_dir: str | None = None,
    boot_file: str | None = None,
    command: str | None = None,
    parameters: dict[str, str] | None = None,
    inputs: dict[str, str] | None = None,
    outputs: dict[str, str] | None = None,
    flavor: str = FLAVOR,
    workspace_id: str = "0",
    algorithm_id: str | None = None,
) -> CreateTrainingJobRequest:
    algorithm = JobAlgorithm(
        id=algorithm_id,
        code_dir=code_dir,
        boot_file=boot_file,
        command=command,
        parameters=[Parameters(name=k, value=v) for k, v in (parameters or {}).items()] or None,
        inputs=[Input(name=k, remote=InputDataInfo(obs=InputDataInfoObs(obs_url=v))) for k, v in (inputs or {}).items()]
        or None,
        outputs=[Output(name=k, remote=Remote(obs=RemoteObs(obs_url=v))) for k, v in (outputs or {}).items()] or None,
    )
    return CreateTrainingJobRequest(
        body=Job(
            kind="job",
            metadata=JobMetadata(name=name, workspace_id=workspace_id, description="test job"),
            algorithm=algorithm,
            spec=Spec(resource=SpecResource(flavor_id=flavor, node_count=1)),
        )
    )


def python_job(name: str, bucket: str, script: str, server: LiveServer, **options: Any) -> CreateTrainingJobRequest:
    """A job running ``script`` (uploaded as main.py of its own code folder)."""
    put(server, f"obs://{bucket}/{name}/code/main.py", script)
    return job(
        name, code_dir=f"obs://{bucket}/{name}/code/", boot_file=f"obs://{bucket}/{name}/code/main.py", **options
    )


def wait_for(client: Any, job_id: str, phases: tuple[str, ...] = ENDED, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        shown = client.show_training_job_details(ShowTrainingJobDetailsRequest(training_job_id=job_id))
        if shown.status.phase in phases:
            return shown
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job_id} still {shown.status.phase} after {timeout} s")
        time.sleep(0.1)
