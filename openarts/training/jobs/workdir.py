"""A job's folder on this machine, and how its process is started from the launch plan."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openarts.compute.executor import LaunchSpec
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore

PYTHON_COMMANDS = {"python", "python3"}
LOG_TAIL_BYTES = 2048


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

    def create(self) -> None:
        for folder in (self.root, self.log.parent, self.code, self.root / "inputs", self.root / "outputs"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)


def prepare(plan: dict[str, Any], folder: JobDir, store: ObjectStore) -> None:
    """Fetch code and inputs and make the output folders: once per job, whatever runs in it."""
    folder.create()
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
                local = local / output_subfolder
                local.mkdir(parents=True, exist_ok=True)
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
    )


def stage(plan: dict[str, Any], folder: JobDir, store: ObjectStore) -> LaunchSpec:
    """Fetch code and inputs, make the output folders, and say how to start the process."""
    prepare(plan, folder, store)
    return launch_spec(plan, folder)


def upload_outputs(plan: dict[str, Any], folder: JobDir, store: ObjectStore) -> list[str]:
    """Upload every output folder; the problems met, if any (one failed upload doesn't stop the others)."""
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
