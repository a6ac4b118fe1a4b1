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

    def create(self) -> None:
        for folder in (self.root, self.log.parent, self.code, self.root / "inputs", self.root / "outputs"):
            folder.mkdir(parents=True, exist_ok=True)
            os.chmod(folder, 0o700)


def stage(plan: dict[str, Any], folder: JobDir, store: ObjectStore) -> LaunchSpec:
    """Fetch code and inputs, make the output folders, and say how to start the process."""
    folder.create()
    if plan.get("code_dir"):
        store.download(parse_obs_url(plan["code_dir"]), folder.code)
    args: list[str] = []
    env: dict[str, str] = dict(plan.get("environments") or {})
    for name, value in plan.get("parameters", []):
        args.append(f"--{name}={value}")  # one argv element, whatever the value holds
    for kind, items in (("input", plan.get("inputs", [])), ("output", plan.get("outputs", []))):
        for item in items:
            local = folder.input(item["name"]) if kind == "input" else folder.output(item["name"])
            local.mkdir(parents=True, exist_ok=True)
            if kind == "input":
                store.download(parse_obs_url(item["obs_url"]), local)
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
        log_path=folder.log,
        exit_path=folder.exit_file,
        memory_limit_mb=plan.get("memory_mb"),
        gpus=plan.get("gpus"),
    )


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
