"""The executor interface: how every piece of user code is started, watched, stopped and measured.

Controllers are written against ``Executor`` only, so a Ray backend can replace ``LocalExecutor`` without
touching them (DESIGN principle 4). What a controller must persist to find a job again after a restart
is the ``ProcessHandle`` (pid and start time) and the spec's ``exit_path``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class Transfer:
    """One copy between the object store and a job's folder (see ``Staging``)."""

    name: str  # what the log calls it: "code", or the input's or output's name
    url: str  # obs://bucket/key; a key ending in "/" names a directory
    path: str  # a folder relative to the job's folder, "/"-separated


@dataclass(frozen=True)
class Staging:
    """What a node that does not share the server's folders fetches before the command and uploads after it.

    ``root`` is the job's folder, at the path the command line and environment name. A download of a
    directory URL copies its tree into ``path``; of an object URL, the object into ``path/<name>`` (as
    ``ObjectStore.download``). An upload copies the folder ``path``, when it exists, under ``url`` (a
    directory). ``folders`` are made even when nothing is downloaded into them (the command's folder,
    the output folders). ``reports`` are files the command writes while it runs that the server needs
    before it ends (a model server's port): each ``path`` is a file, uploaded to the object ``url`` as
    soon as it appears. Only a backend whose ``stages_remotely`` is true acts on it; otherwise the
    server has staged the folder itself and the field is ignored.
    """

    root: Path
    downloads: tuple[Transfer, ...] = ()
    uploads: tuple[Transfer, ...] = ()
    folders: tuple[str, ...] = ()
    reports: tuple[Transfer, ...] = ()


@dataclass(frozen=True)
class LaunchSpec:
    argv: list[str]  # never a shell string: each element reaches the program as one argument
    cwd: Path
    # Added to a minimal base environment; the server's own environment (OPENARTS_*, credentials) is not
    # inherited.
    env: dict[str, str]
    log_path: Path  # stdout and stderr of the whole process tree, appended
    exit_path: Path  # where the exit code is recorded, so it survives the server
    memory_limit_mb: int | None = None
    # CUDA_VISIBLE_DEVICES: None leaves it unset (every GPU visible), [] hides them all.
    gpus: list[int] | None = None
    # One of many short processes (a search's trials): a backend may start it a cheaper way (the local
    # one has a long-lived launcher start it, without a runner interpreter of its own) with the same
    # guarantees. Where the backend has no such way, it is ignored.
    via_launcher: bool = False
    # How the job's node gets code and inputs and gives back outputs, when it stages them itself.
    staging: Staging | None = None
    # What the flavor asks of each node (its cores; memory and GPUs are ``memory_limit_mb`` and ``gpus``),
    # and on how many nodes the command runs, once on each. A backend that places jobs by their resources
    # (Ray) asks for them; None leaves the backend's own default (one CPU on Ray). The local backend has
    # one machine: it refuses ``nodes`` > 1 and leaves CPUs to the capacity pool's admission.
    cpus: float | None = None
    nodes: int = 1


@dataclass(frozen=True)
class ProcessHandle:
    pid: int  # the runner's pid, also its process-group id
    start_time: float  # psutil's create_time(): tells this process from a later one with the same pid


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None  # the command's exit code (128+N when killed by signal N); None if lost
    lost: bool  # the process tree vanished without recording an exit code (e.g. a SIGKILLed runner)
    ended_at: float | None = None  # when the exit code was recorded (epoch seconds), if known


@dataclass(frozen=True)
class Usage:
    cpu_percent: float  # summed over the process tree (100 = one core)
    memory_mb: float  # resident memory summed over the tree


class Executor(Protocol):
    @property
    def stages_remotely(self) -> bool:
        """Whether the jobs' nodes fetch code and inputs and upload outputs themselves, from the spec's
        ``staging`` (their folders are not this machine's): then the server must not stage them."""
        ...

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        """Start the command in its own process group and return at once."""
        ...

    def outcome(self, handle: ProcessHandle, exit_path: Path) -> Outcome | None:
        """How the command ended; None while it still runs."""
        ...

    def is_alive(self, handle: ProcessHandle) -> bool:
        """Whether the handle's process still runs: same pid and same start time."""
        ...

    def terminate(self, handle: ProcessHandle) -> None:
        """Ask the whole process tree to stop (SIGTERM); returns at once."""
        ...

    def kill(self, handle: ProcessHandle) -> None:
        """Stop the whole process tree now (SIGKILL)."""
        ...

    def usage(self, handle: ProcessHandle) -> Usage:
        """CPU and memory of the whole process tree now."""
        ...

    def find(self, exit_path: Path) -> ProcessHandle | None:
        """The live process recording into ``exit_path``: a job whose handle a crash kept from being saved."""
        ...

    def host_of(self, handle: ProcessHandle) -> str | None:
        """The address of the machine the process runs on, as the server reaches it (a service instance
        listens there); None while that is not known yet."""
        ...

    def warm_up(self) -> None:
        """A hint that launches with ``via_launcher`` are coming (a search starts): a backend may get ready
        for them in the background. Returns at once; doing nothing is a valid implementation."""
        ...


# --- helpers shared by the backends ---------------------------------------------------------------------

BASE_LANG = "C.UTF-8"


def job_environment(spec: LaunchSpec) -> dict[str, str]:
    """The environment a job sees: a minimal base, then the spec's values, then the GPU pinning.

    The server's environment is deliberately not the base: it holds OPENARTS_* settings, database URLs
    and object-store keys that user code must never read. PATH and HOME are kept because programs need
    them to find tools and caches; they are not secrets.
    """
    env = {
        "PATH": os.environ.get("PATH") or os.defpath,
        "HOME": os.environ.get("HOME") or str(Path.home()),  # Path.home() alone costs a search's launch 2 %
        "LANG": BASE_LANG,
        "PYTHONUNBUFFERED": "1",  # so the log shows prints as they happen, not when a buffer fills
        "TMPDIR": str(spec.cwd / "tmp"),  # scratch space inside the job's folder, removed with it
    }
    for key, value in spec.env.items():
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise ValueError(f"invalid environment variable {key!r}")
        env[key] = value
    if spec.gpus is not None:
        # After the spec's values: the allocation decides which GPUs a job may use, not the job.
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(index) for index in spec.gpus)
    return env


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int
    ended_at: float  # the exit file's modification time


def read_exit_record(exit_path: Path) -> ExitRecord | None:
    """The exit code the runner recorded, or None if there is none (yet).

    The file holds the code as plain text, written in full before it is renamed into place, so its
    modification time is when the job ended. The rename is atomic, so a partial file is never seen;
    anything unreadable (an empty file, after a power cut in the moment before a launcher's record was
    durable) is treated as absent rather than guessed at.
    """
    try:
        raw = exit_path.read_text()
        ended_at = exit_path.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        return ExitRecord(exit_code=int(raw.strip()), ended_at=ended_at)
    except ValueError:
        return None


def log_tail(log_path: Path, max_bytes: int) -> tuple[str, int]:
    """The newest ``max_bytes`` of a log (all of it when smaller) and the log's full size in bytes."""
    try:
        with log_path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(max(0, size - max_bytes))
            data = handle.read(max_bytes)
    except FileNotFoundError:
        return "", 0
    return data.decode("utf-8", errors="replace"), size
