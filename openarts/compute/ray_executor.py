"""The Ray backend of ``Executor``: each job is a Ray Job (``ray.job_submission``) on a Ray cluster.

Why Ray Jobs rather than tasks or actors driven from the server (see docs/operations.md, "Ray executor"):
a Ray Job is a process the cluster supervises on its own, so a job outlives the server exactly as a
local runner does; it has a name of our choosing (the submission id), by which a restarted server finds
it again; it is stopped by id; its output is kept by the cluster and served over HTTP; and the server
needs only the dashboard's HTTP address, not to be a Ray driver (no Ray worker processes in the API
server, no GCS connection to keep alive).

The handle. ``ProcessHandle`` holds an int and a float, which the families store as they are. Here the
int is a random ticket (below 2**31, so any SQL integer column holds it) and the float the launch time;
the Ray submission id is derived from both (``submission_id``), so any executor instance, in any server
process, maps a stored handle to its Ray job without a lookup. For ``find`` (a crash between launch and
storing the handle) a small registry file next to the exit file (``EXIT_FILE.ray``) is written before
the job is submitted: it names the handle, and also records how much of the Ray log has been copied.

Exit codes and logs. The cluster runs ``ray_entry.py`` (see there), whose exit code is the command's;
Ray records it as the driver's exit code. A follower thread per job copies Ray's log of the job into
the spec's ``log_path`` as it grows and, once the job has ended, writes the exit file the controllers
read (atomically, its modification time the job's end), then calls ``on_exit``. On the way it takes out
of the log the usage records the node writes into it (``split_usage``): the last one is ``usage``. When
Ray knows no exit code (a lost node, a job that vanished from the cluster) the outcome is ``lost`` and
Ray's reason is appended to the log, where the controller's failure message picks it up.

Staging. Given a ``RemoteStore`` (an S3-compatible object store, and nodes that do not share the data
folder), the executor ``stages_remotely``: each job's node fetches the code and inputs named by the spec's
``staging`` into the job's folder and uploads its outputs afterwards (see ``ray_entry.py``), with the
store's address and keys in the job's description. Without one, the nodes share the server's folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shlex
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from openarts.compute.executor import (
    LaunchSpec,
    Outcome,
    ProcessHandle,
    Staging,
    Usage,
    job_environment,
    read_exit_record,
)
from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage.paths import ObsPath, parse_obs_url

log = logging.getLogger(__name__)

ENTRY_SOURCE = Path(__file__).with_name("ray_entry.py").read_text()
# Run as the main module, so that Ray pickles its functions by value: the nodes need no OpenArts installed.
ENTRY_BOOTSTRAP = "import os;exec(compile(os.environ.pop('OPENARTS_RAY_ENTRY'),'ray_entry.py','exec'))"
REGISTRY_SUFFIX = ".ray"
SUBMISSION_PREFIX = "openarts-"
# Ray reports no exit code for a job it stopped before its driver reported one; a stopped local job
# usually ends by SIGTERM, so that is what is reported.
EXIT_STOPPED = 128 + 15
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
_POLL_S = 0.25  # how often a follower copies new log output and checks the job's state
# The entrypoint's usage records (ray_entry.USAGE_RECORD); a record cut short at the end of what the log holds
# so far is held back until the rest arrives (one is far shorter than USAGE_HOLD_BACK).
USAGE_RECORD = re.compile(r"\x1b\]openarts-usage;(\d+(?:\.\d+)?);(\d+(?:\.\d+)?)\x07")
USAGE_START = "\x1b]openarts-usage;"
USAGE_HOLD_BACK = 64
_UNREACHABLE_LOG_EVERY_S = 60.0


def submission_id(handle: ProcessHandle) -> str:
    """The Ray submission id of the job behind ``handle``: a pure function of it, so nothing is looked up."""
    return f"{SUBMISSION_PREFIX}{handle.pid:08x}-{round(handle.start_time * 1_000_000):x}"


def registry_path(exit_path: Path) -> Path:
    return exit_path.with_name(exit_path.name + REGISTRY_SUFFIX)


def split_usage(text: str, *, final: bool = False) -> tuple[str, Usage | None, int]:
    """The log ``text`` without the entrypoint's usage records, the last record's figures, and how much of
    ``text`` that accounts for: a record cut short at its end is left for the next time (unless ``final``)."""
    used = len(text)
    escape = text.rfind("\x1b", max(0, len(text) - USAGE_HOLD_BACK))
    if not final and escape >= 0:
        tail = text[escape:]
        if USAGE_START.startswith(tail) or (tail.startswith(USAGE_START) and "\x07" not in tail):
            used = escape
    records = list(USAGE_RECORD.finditer(text, 0, used))
    if not records:
        return text[:used], None, used
    usage = Usage(cpu_percent=float(records[-1][1]), memory_mb=float(records[-1][2]))
    return USAGE_RECORD.sub("", text[:used]), usage, used


@dataclass(frozen=True)
class RayResources:
    """What one job asks of the cluster: per node, and how many nodes (one process on each)."""

    cpus: float = 1.0
    memory_mb: int | None = None
    gpus: int = 0
    nodes: int = 1


def ray_resources(spec: LaunchSpec) -> RayResources:
    """What a spec asks of the cluster: per node, the flavor's CPUs (one when it names none), its memory
    limit and as many GPUs as it lists (their indices mean nothing on the cluster: Ray picks the cards),
    on ``spec.nodes`` nodes."""
    return RayResources(
        cpus=1.0 if spec.cpus is None else float(spec.cpus),
        memory_mb=spec.memory_limit_mb,
        gpus=len(spec.gpus or []),
        nodes=spec.nodes,
    )


@dataclass(frozen=True)
class RemoteStore:
    """How the nodes reach the S3-compatible object store to stage their jobs themselves."""

    endpoint: str
    access_key: str | None = None  # None: the node's own credentials (its environment, an instance role)
    secret_key: str | None = None

    def __repr__(self) -> str:  # never the keys in a log line
        return f"RemoteStore(endpoint={self.endpoint!r})"


def staging_description(staging: Staging, store: RemoteStore) -> dict[str, Any]:
    """``staging`` as the entrypoint reads it from the job's description (JSON)."""
    return {
        "root": str(staging.root),
        "downloads": [asdict(item) for item in staging.downloads],
        "uploads": [asdict(item) for item in staging.uploads],
        "folders": list(staging.folders),
        "reports": [asdict(item) for item in staging.reports],
        "store": asdict(store),
    }


def remote_store(settings: Settings) -> RemoteStore | None:
    """The store the nodes stage from, or None when they share the server's folders (or cannot)."""
    if settings.ray_shared_fs or not settings.obs_endpoint:
        return None
    return RemoteStore(settings.obs_endpoint, settings.obs_access_key, settings.obs_secret_key)


class RayExecutor:
    """Implements ``Executor`` on a Ray cluster through Ray Jobs. Thread-safe: controllers may share one.

    ``address`` is the cluster's dashboard HTTP address (``http://head:8265``). Token authentication is
    Ray's own: with ``RAY_AUTH_MODE=token`` and ``RAY_AUTH_TOKEN`` (or ``RAY_AUTH_TOKEN_PATH``) in the
    server's environment, every request carries the token. ``python`` is the interpreter on the nodes
    that runs the entrypoint (by default the server's own path: a cluster built from one image). With
    ``store``, the nodes stage each job's folder from that object store (``stages_remotely``).
    """

    def __init__(
        self,
        address: str,
        on_exit: Callable[[], None] | None = None,
        *,
        python: str | None = None,
        poll_s: float = _POLL_S,
        store: RemoteStore | None = None,
        usage_every_s: float | None = None,
    ) -> None:
        self.address = address
        self._usage_every_s = usage_every_s  # how often a job's node measures it (ray_entry's default when None)
        self._usage: dict[str, Usage] = {}  # per submission id: the last figures its node reported
        self._store = store
        self._on_exit = on_exit
        self._python = python or sys.executable
        self._poll_s = poll_s
        self._lock = threading.Lock()
        self._client_obj: Any = None
        self._followers: dict[str, threading.Thread] = {}
        self._finish_locks: dict[str, threading.Lock] = {}
        self._closed = threading.Event()

    @property
    def stages_remotely(self) -> bool:
        """Whether the nodes fetch code and inputs and upload outputs themselves (an S3-compatible store,
        no shared data folder): then the server does not."""
        return self._store is not None

    def close(self) -> None:
        """Stop following jobs (they run on); the executor must not be used afterwards."""
        self._closed.set()

    @property
    def _client(self) -> Any:
        # Created on first use: the constructor contacts the cluster, which a server must not need to start.
        with self._lock:
            if self._client_obj is None:
                from ray.job_submission import JobSubmissionClient

                self._client_obj = JobSubmissionClient(self.address)
            return self._client_obj

    # --- starting ---------------------------------------------------------------------------------------

    def launch(self, spec: LaunchSpec, resources: RayResources | None = None) -> ProcessHandle:
        """Submit the job and return at once. Without ``resources``, the spec's (``ray_resources``)."""
        if not spec.argv or not all(isinstance(arg, str) for arg in spec.argv):
            raise ValueError("argv must be a non-empty list of strings")
        if spec.memory_limit_mb is not None and spec.memory_limit_mb <= 0:
            raise ValueError("memory_limit_mb must be positive")
        if resources is None:
            resources = ray_resources(spec)
        if resources.nodes < 1 or resources.cpus < 0 or resources.gpus < 0:
            raise ValueError("resources must ask for at least one node and no negative amounts")
        # The local GPU indices are not passed on: on the cluster, Ray sets CUDA_VISIBLE_DEVICES.
        env = job_environment(replace(spec, gpus=None))
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.exit_path.parent.mkdir(parents=True, exist_ok=True)
        spec.exit_path.unlink(missing_ok=True)  # a launch owns its exit file, as with the local backend
        os.close(os.open(spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
        handle = ProcessHandle(pid=1 + secrets.randbelow(2**31 - 2), start_time=time.time())
        sid = submission_id(handle)
        _write_registry(
            spec.exit_path,
            {"pid": handle.pid, "start_time": handle.start_time, "log": str(spec.log_path), "copied": 0},
        )
        job: dict[str, Any] = {
            "argv": list(spec.argv),
            "cwd": str(spec.cwd),
            "env": env,
            "memory_mb": spec.memory_limit_mb,
            "nodes": resources.nodes,
            "cpus_per_node": resources.cpus,
            "gpus_per_node": resources.gpus,
            "memory_bytes_per_node": resources.memory_mb * 1024 * 1024 if resources.memory_mb else None,
            "usage_every_s": self._usage_every_s,
        }
        if self._store is not None and spec.staging is not None:
            # The keys travel in the runtime environment like the rest: never on a command line, never
            # to the command (see ray_entry.py), but shown by the dashboard to whoever holds its token.
            job["staging"] = staging_description(spec.staging, self._store)
        # Ray Jobs runs its entrypoint through a shell, so the entrypoint is quoted here element by
        # element (shlex.join); it holds no user data anyway: argv and environment travel as JSON in the
        # runtime environment and reach the command as an argv list (see ray_entry.py).
        # The entry's source travels in the environment too, so Ray's log line quoting the entrypoint is short.
        entrypoint = shlex.join([self._python, "-c", ENTRY_BOOTSTRAP])
        single = resources.nodes == 1
        self._client.submit_job(
            entrypoint=entrypoint,
            submission_id=sid,
            runtime_env={"env_vars": {"OPENARTS_RAY_JOB": json.dumps(job), "OPENARTS_RAY_ENTRY": ENTRY_SOURCE}},
            metadata={"openarts_log": str(spec.log_path), "openarts_exit": str(spec.exit_path)},
            # Several nodes: the entrypoint only coordinates; the placement group holds the resources.
            entrypoint_num_cpus=resources.cpus if single else 0,
            entrypoint_num_gpus=resources.gpus if single and resources.gpus else None,
            entrypoint_memory=job["memory_bytes_per_node"] if single else None,
        )
        self._follow(sid, spec.log_path, spec.exit_path)
        return handle

    def warm_up(self) -> None:
        """Nothing to prepare: a Ray job costs a submission whatever comes before it."""

    # --- watching ---------------------------------------------------------------------------------------

    def outcome(self, handle: ProcessHandle, exit_path: Path) -> Outcome | None:
        record = read_exit_record(exit_path)
        if record is not None:
            return Outcome(exit_code=record.exit_code, lost=False, ended_at=record.ended_at)
        sid = submission_id(handle)
        info = self._info(sid)
        if info is _UNREACHABLE:
            return None  # the cluster cannot be asked now: the job is not known to have ended
        if info is None:
            _append(exit_path, None, f"[openarts] the Ray job {sid} is unknown to the cluster at {self.address}\n")
            return Outcome(exit_code=None, lost=True)
        if str(info.status) not in _TERMINAL:
            self._follow(sid, Path(info.metadata["openarts_log"]), exit_path)
            return None
        return self._finish(sid, info, Path(info.metadata["openarts_log"]), exit_path)

    def is_alive(self, handle: ProcessHandle) -> bool:
        info = self._info(submission_id(handle))
        if info is _UNREACHABLE:
            return True  # not known to have ended: the caller must not treat it as gone
        return info is not None and str(info.status) not in _TERMINAL

    def usage(self, handle: ProcessHandle) -> Usage:
        """The figures the job's node last reported in its log (every few seconds, see ray_entry.py): its
        command's process tree. Zero before the first report, after the job's end, for a job this executor
        does not follow (another server's), and for a job on several nodes (not measured)."""
        with self._lock:
            return self._usage.get(submission_id(handle), Usage(cpu_percent=0.0, memory_mb=0.0))

    # --- stopping ---------------------------------------------------------------------------------------

    def terminate(self, handle: ProcessHandle) -> None:
        """Ray sends SIGTERM to the entrypoint, then SIGKILL after RAY_JOB_STOP_WAIT_TIME_S (3 s)."""
        self._stop(handle)

    def kill(self, handle: ProcessHandle) -> None:
        """Ray Jobs has no immediate kill: a second stop request is all there is (SIGKILL follows the SIGTERM)."""
        self._stop(handle)

    def _stop(self, handle: ProcessHandle) -> None:
        with contextlib.suppress(RuntimeError):  # unknown or already ended: nothing to stop
            self._client.stop_job(submission_id(handle))

    # --- finding after a crash --------------------------------------------------------------------------

    def host_of(self, handle: ProcessHandle) -> str | None:
        """The IP of the node running the job's driver (where a one-node job's command runs), as Ray's
        own agent on that node advertises it."""
        info = self._info(submission_id(handle))
        if info is None or info is _UNREACHABLE:
            return None
        agent = getattr(info, "driver_agent_http_address", None)
        return urllib.parse.urlsplit(agent).hostname if agent else None

    def find(self, exit_path: Path) -> ProcessHandle | None:
        registry = _read_registry(exit_path)
        if registry is None:
            return None
        handle = ProcessHandle(pid=int(registry["pid"]), start_time=float(registry["start_time"]))
        return handle if self.is_alive(handle) else None

    # --- the followers ----------------------------------------------------------------------------------

    def _info(self, sid: str) -> Any:
        """The job's details; None when the cluster does not know it; _UNREACHABLE when it cannot be asked."""
        try:
            return self._client.get_job_info(sid)
        except RuntimeError as exc:
            if "does not exist" in str(exc) or "404" in str(exc):
                return None
            log.warning("ray: asking for job %s failed: %s", sid, exc)
            return _UNREACHABLE
        except OSError as exc:  # requests' connection errors are OSErrors
            log.warning("ray: the cluster at %s cannot be reached: %s", self.address, exc)
            return _UNREACHABLE

    def _follow(self, sid: str, log_path: Path, exit_path: Path) -> None:
        """Start copying the job's log and watching for its end, unless a thread already does."""
        with self._lock:
            thread = self._followers.get(sid)
            if thread is not None and thread.is_alive():
                return
            thread = threading.Thread(
                target=self._run_follower, args=(sid, log_path, exit_path), name=f"ray-{sid}", daemon=True
            )
            self._followers[sid] = thread
        thread.start()

    def _run_follower(self, sid: str, log_path: Path, exit_path: Path) -> None:
        last_warning = 0.0
        while not self._closed.is_set():
            try:
                info = self._client.get_job_info(sid)
                self._copy_logs(sid, log_path, exit_path)
                if str(info.status) in _TERMINAL:
                    self._finish(sid, info, log_path, exit_path)
                    return
            except Exception as exc:  # the cluster may be briefly away: keep following
                if "does not exist" in str(exc):
                    return  # outcome() reports it lost
                if time.monotonic() - last_warning > _UNREACHABLE_LOG_EVERY_S:
                    log.warning("ray: following job %s: %s", sid, exc)
                    last_warning = time.monotonic()
            self._closed.wait(self._poll_s)

    def _copy_logs(self, sid: str, log_path: Path, exit_path: Path, *, final: bool = False) -> None:
        """Append what Ray has of the job's output beyond what was copied before (counted in the registry).

        The whole log is fetched each time (Ray Jobs' HTTP API has no offset); the count kept next to the
        exit file lets a restarted server carry on without writing anything twice. The node's usage records
        are taken out on the way, and their last figures kept for ``usage``.
        """
        text: str = self._client.get_job_logs(sid)
        registry = _read_registry(exit_path) or {}
        copied = int(registry.get("copied", 0))
        if len(text) <= copied:
            return
        kept, usage, used = split_usage(text[copied:], final=final)
        if usage is not None:
            with self._lock:
                self._usage[sid] = usage
        if kept:
            _append(exit_path, log_path, kept)
        registry["copied"] = copied + used
        _write_registry(exit_path, registry)

    def _finish(self, sid: str, info: Any, log_path: Path, exit_path: Path) -> Outcome:
        """Record how the job ended (once, whichever thread sees it first) and report it."""
        with self._lock:
            lock = self._finish_locks.setdefault(sid, threading.Lock())
        with lock:
            record = read_exit_record(exit_path)
            if record is not None:
                return Outcome(exit_code=record.exit_code, lost=False, ended_at=record.ended_at)
            if (_read_registry(exit_path) or {}).get("lost"):
                return Outcome(exit_code=None, lost=True)  # reported before: the reason is in the log once
            with contextlib.suppress(Exception):
                self._copy_logs(sid, log_path, exit_path, final=True)  # the last lines, before the end
            with self._lock:
                self._usage.pop(sid, None)
            code = info.driver_exit_code
            status = str(info.status)
            if code is None and status == "STOPPED":
                code = EXIT_STOPPED
            ended_at = (info.end_time or time.time() * 1000) / 1000
            if code is None:
                _append(exit_path, log_path, f"[openarts] Ray: the job ended ({status}): {info.message}\n")
                _write_registry(exit_path, {**(_read_registry(exit_path) or {}), "lost": True})
                outcome = Outcome(exit_code=None, lost=True)
            else:
                _write_exit_file(exit_path, int(code), ended_at)
                outcome = Outcome(exit_code=int(code), lost=False, ended_at=ended_at)
        if self._on_exit is not None:
            self._on_exit()
        return outcome


_UNREACHABLE = object()


def _append(exit_path: Path, log_path: Path | None, text: str) -> None:
    if log_path is None:
        registry = _read_registry(exit_path)
        if registry is None or "log" not in registry:
            return
        log_path = Path(registry["log"])
    with log_path.open("a", encoding="utf-8") as handle:
        handle.write(text)


def _read_registry(exit_path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(registry_path(exit_path).read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _write_registry(exit_path: Path, value: dict[str, Any]) -> None:
    path = registry_path(exit_path)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(value))
    temporary.replace(path)


def _write_exit_file(exit_path: Path, code: int, ended_at: float) -> None:
    """As the runner writes it: fsynced, renamed into place, its modification time the job's end."""
    temporary = exit_path.with_name(exit_path.name + ".tmp")
    with temporary.open("w") as handle:
        handle.write(f"{code}\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.utime(temporary, (ended_at, ended_at))
    temporary.replace(exit_path)


# --- settings ---------------------------------------------------------------------------------------------


def validate_ray_settings(settings: Settings) -> None:
    """Refuse settings under which jobs could not run on the cluster, saying why (at start-up)."""
    if settings.executor != "ray":
        return
    if not settings.ray_address:
        raise ValueError("OPENARTS_EXECUTOR=ray needs OPENARTS_RAY_ADDRESS (the Ray dashboard, http://HEAD:8265)")
    try:
        import ray.job_submission  # noqa: F401
    except ImportError as exc:
        raise ValueError("OPENARTS_EXECUTOR=ray needs Ray on the server: pip install 'openarts[ray]'") from exc
    if settings.ray_shared_fs:
        return  # the nodes read and write the jobs' folders where the server staged them
    if settings.obs_endpoint is None:
        raise ValueError(
            "OPENARTS_EXECUTOR=ray with the local object store: the Ray nodes cannot read a folder on this "
            f"machine ({settings.obs_root}). Set OPENARTS_OBS_ENDPOINT to an S3-compatible store (the nodes "
            "then fetch code and inputs from it and upload outputs to it themselves), or set "
            "OPENARTS_RAY_SHARED_FS=1 if every node mounts the data folder "
            f"{settings.data_dir} at the same path."
        )
    # An S3-compatible store: each node stages its job's folder from it (RayExecutor.stages_remotely).
    if settings.obs_private_url is not None:
        private_url(settings)  # service instances stage from there: a typo fails now, not at a deploy


def private_url(settings: Settings) -> ObsPath | None:
    """The directory of the store where the server keeps its own objects (``OPENARTS_OBS_PRIVATE_URL``), or
    None when unset; ``ValueError`` when it is not a directory URL of the object-path grammar."""
    raw = settings.obs_private_url
    if raw is None:
        return None
    try:
        path = parse_obs_url(raw if raw.endswith("/") else raw + "/")
    except ApiError as exc:
        raise ValueError(f"OPENARTS_OBS_PRIVATE_URL: {exc.message}") from exc
    return path
