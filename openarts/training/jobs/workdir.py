"""A job's folder on this machine, and how its process is started from the launch plan."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openarts.compute.executor import LaunchSpec, Staging, Transfer
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore

PYTHON_COMMANDS = {"python", "python3"}
LOG_TAIL_BYTES = 2048
# A node that staged a job itself reports a failed upload in the job's log with this line (ray_entry.py
# prints it), where the server picks it up as it would its own upload problems. In a job on several
# nodes Ray prefixes each rank's lines with "(_rank pid=..., ip=...) ", maybe in colour.
REMOTE_UPLOAD_PROBLEM = re.compile(
    r"^(?:\x1b\[[\d;]*m)*(?:\([^)\n]*\)(?:\x1b\[[\d;]*m)* )?\[openarts\] (output (\S+) could not be uploaded: .*)$",
    re.MULTILINE,
)
REMOTE_PROBLEM_SCAN_BYTES = 64 * 1024


@dataclass(frozen=True)
class JobDir:
    root: Path

    @property
    def log(self) -> Path:
        return self.root / "logs" / "worker-0.log"

    @property
    def exit_file(self) -> Path:
        return self.root / "exit_code"

    @property
    def code(self) -> Path:
        return self.root / "code"

    def input(self, name: str) -> Path:
        return self.root / "inputs" / name

    def output(self, name: str) -> Path:
        return self.root / "outputs" / name

    def trial(self, trial_id: str) -> Path:
        return self.root / "trials" / trial_id

    def create(self, *, contents: bool = True) -> None:
        """Make the folder; without ``contents`` only its logs folder (a remote node makes the rest)."""
        folders = [self.root, self.log.parent]
        if contents:
            folders += [self.code, self.root / "inputs", self.root / "outputs"]
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)


def prepare(plan: dict[str, Any], folder: JobDir, store: ObjectStore, *, remote: bool = False) -> None:
    """Fetch code and inputs and make the output folders: once per job, whatever runs in it.

    ``remote``: the executor's nodes fetch them themselves (``Executor.stages_remotely``, from the spec's
    ``staging``), so only the folder for logs and exit files is made here.
    """
    folder.create(contents=not remote)
    if remote:
        return
    if plan.get("code_dir"):
        store.download(parse_obs_url(plan["code_dir"]), folder.code)
    for item in plan.get("inputs", []):
        local = folder.input(item["name"])
        local.mkdir(parents=True, exist_ok=True)
        store.download(parse_obs_url(item["obs_url"]), local)
    for item in plan.get("outputs", []):
        folder.output(item["name"]).mkdir(parents=True, exist_ok=True)


def format_value(value: Any) -> str:
    """A hyperparameter as its argument text: whole numbers without a decimal point (``--batch=32``)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def launch_spec(
    plan: dict[str, Any],
    folder: JobDir,
    *,
    overrides: dict[str, Any] | None = None,
    log_path: Path | None = None,
    exit_path: Path | None = None,
    output_subfolder: str | None = None,
) -> LaunchSpec:
    """How to start the job's command; a search trial overrides hyperparameters and has its own files."""
    values = {name: value for name, value in plan.get("parameters", [])}
    values.update({name: format_value(value) for name, value in (overrides or {}).items()})
    args = [f"--{name}={value}" for name, value in values.items()]  # one argv element, whatever the value
    env: dict[str, str] = dict(plan.get("environments") or {})
    for kind, items in (("input", plan.get("inputs", [])), ("output", plan.get("outputs", []))):
        for item in items:
            local = folder.input(item["name"]) if kind == "input" else folder.output(item["name"])
            if kind == "output" and output_subfolder:
                # Made here where the server staged the folder (prepare made the output folder); a node
                # that stages the job itself makes it from the spec's staging.
                if local.is_dir():
                    (local / output_subfolder).mkdir(parents=True, exist_ok=True)
                local = local / output_subfolder
            if item["access_method"] == "env":
                env[item["name"]] = str(local)
            else:
                args.append(f"--{item['name']}={local}")
    if plan.get("boot_file"):
        argv = [plan["python"], str(folder.code / plan["boot_file"])]
    else:
        command = list(plan["command"])
        if command[0] in PYTHON_COMMANDS:
            command[0] = plan["python"]  # the job's engine decides which interpreter "python" is
        argv = command
    return LaunchSpec(
        argv=argv + args,
        cwd=folder.code,
        env=env,
        log_path=log_path or folder.log,
        exit_path=exit_path or folder.exit_file,
        memory_limit_mb=plan.get("memory_mb"),
        gpus=plan.get("gpus"),
        staging=remote_staging(plan, folder, output_subfolder),
        # A job asks for its flavor's cores on each of its nodes. A search's trials take one CPU each, the
        # backend's default: the search runs as many at once as the flavor has cores (plan._search).
        # Plans stored before these were recorded run as they did then: one CPU, one node.
        cpus=None if plan.get("search") else plan.get("cpus"),
        nodes=int(plan.get("node_count") or 1),
    )


def remote_staging(plan: dict[str, Any], folder: JobDir, output_subfolder: str | None = None) -> Staging:
    """What ``prepare`` and ``upload_outputs`` do, as a node that stages the job itself must do it: the same
    folders at the same paths, so the command line and environment are the same. A search trial uploads
    only its own output subfolder, under the same subfolder of each output's URL."""
    downloads: list[Transfer] = []
    if plan.get("code_dir"):
        downloads.append(Transfer("code", parse_obs_url(plan["code_dir"]).url(), "code"))
    for item in plan.get("inputs", []):
        downloads.append(Transfer(item["name"], parse_obs_url(item["obs_url"]).url(), f"inputs/{item['name']}"))
    uploads: list[Transfer] = []
    for item in plan.get("outputs", []):
        target = parse_obs_url(item["obs_url"]).as_dir()
        path = f"outputs/{item['name']}"
        for segment in (output_subfolder or "").split("/"):
            if segment:
                target = target.child(segment, is_dir=True)
                path = f"{path}/{segment}"
        uploads.append(Transfer(item["name"], target.url(), path))
    folders = ("code", "inputs", "outputs", *(upload.path for upload in uploads))
    return Staging(root=folder.root, downloads=tuple(downloads), uploads=tuple(uploads), folders=folders)


def stage(plan: dict[str, Any], folder: JobDir, store: ObjectStore, *, remote: bool = False) -> LaunchSpec:
    """Fetch code and inputs, make the output folders, and say how to start the process (``remote``: the
    node does the fetching, see ``prepare``)."""
    prepare(plan, folder, store, remote=remote)
    return launch_spec(plan, folder)


def upload_outputs(plan: dict[str, Any], folder: JobDir, store: ObjectStore, *, remote: bool = False) -> list[str]:
    """Upload every output folder; the problems met, if any (one failed upload doesn't stop the others).

    ``remote``: the nodes uploaded the outputs themselves when the command ended; the problems they met
    are read from the job's log (and its trials' logs), one per output.
    """
    if remote:
        return remote_upload_problems(folder)
    problems = []
    for item in plan.get("outputs", []):
        local = folder.output(item["name"])
        if not local.is_dir():
            continue
        try:
            store.upload(local, parse_obs_url(item["obs_url"]))
        except Exception as exc:  # report it on the job rather than lose the other outputs
            problems.append(f"output {item['name']} could not be uploaded: {exc}")
    return problems


def remote_upload_problems(folder: JobDir) -> list[str]:
    """The upload problems a node reported at the end of the job's log or of its search trials' logs
    (``REMOTE_UPLOAD_PROBLEM``), the first one per output."""
    logs = [folder.log, *sorted(folder.root.glob("trials/*/log.txt"))]
    found: dict[str, str] = {}
    for path in logs:
        try:
            with open(path, "rb") as handle:
                handle.seek(0, os.SEEK_END)
                handle.seek(max(0, handle.tell() - REMOTE_PROBLEM_SCAN_BYTES))
                text = handle.read().decode("utf-8", "replace")
        except OSError:
            continue
        for match in REMOTE_UPLOAD_PROBLEM.finditer(text):
            found.setdefault(match.group(2), match.group(1).rstrip("\r"))
    return list(found.values())


def log_tail(folder: JobDir, max_bytes: int = LOG_TAIL_BYTES) -> str:
    try:
        with open(folder.log, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except OSError:
        return ""
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-10:])
