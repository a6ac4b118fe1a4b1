"""The entrypoint of one OpenArts job on a Ray cluster: runs on a cluster node, not in the server.

``RayExecutor`` submits ``PYTHON -c <this file's source>`` as a Ray job; the job's description (argv,
folder, environment, limits, node count) arrives as JSON in the ``OPENARTS_RAY_JOB`` variable of the
job's runtime environment. So no user string is ever part of the shell command Ray Jobs runs, and this
file needs nothing from OpenArts on the node (only Ray itself, for jobs on several nodes).

- One node: the command runs as this process's child, with exactly the job's environment (the node's
  own, which holds ``RAY_AUTH_TOKEN`` and the cluster address, is not passed on), the memory limit, and
  this process's exit code is the command's (128+N when killed by signal N), which Ray records as the
  driver's exit code.
- Several nodes: a placement group with one bundle per node (STRICT_SPREAD), one Ray task per bundle,
  each running the command with the rendezvous variables a distributed training script expects (RANK,
  WORLD_SIZE, LOCAL_RANK, NODE_RANK, MASTER_ADDR, MASTER_PORT). The exit code is rank 0's, or the first
  non-zero one; a rank whose node or worker dies fails the job with a message naming the rank and Ray's
  reason, which reaches the job's log.

On one node, the command's process tree is measured every few seconds (CPU and resident memory, from
/proc) and the figures are written into the log as one escape sequence (``USAGE_RECORD``), which the
server's log follower takes out of the log and serves as the job's usage (``RayExecutor.usage``).

Every command is started with the parent-death signal set to SIGKILL, so that when Ray ends the process
running it (a stop, a lost node, a cancelled task) the command does not run on unaccounted for.

Staging (when the job description has ``staging``: the nodes do not share the server's folders, and the
object store is S3-compatible). Before the command, the job's folder is made on the node at the path the
command line names and the code and inputs are downloaded into it, as the server would have; after the
command, each output folder is uploaded to its URL, then the node's copy is removed. The store's address
and keys arrive in the job description (never on a command line) and never reach the command. s3fs is
used, or boto3 when only that is installed. Several processes of one job on one node (a search's trials,
or ranks on a machine that is every node at once) share one copy: the first downloads it, the last
removes it (two lock files in the job's folder, which stay). A download that fails fails the job before
the command runs (``[openarts] staging failed: ...``, exit code 125). An upload that fails is reported as
``[openarts] output NAME could not be uploaded: REASON`` and the other outputs are still uploaded; the exit
code stays the command's, and the server reads these lines from the log as it reports its own upload
problems (``openarts.training.jobs.workdir.remote_upload_problems``). While the command runs, each report
file it writes (a model server's port) is uploaded as soon as it appears, and the server reads it from the
store: the same file the instance writes into a shared folder, rather than a line of the log, which the
command's own output could imitate and which Ray may serve from another node's copy on one machine.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import importlib
import json
import os
import resource
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from typing import IO, Any

EXIT_NO_FOLDER = 126
EXIT_LOST_RANK = 1
EXIT_STAGING_FAILED = 125  # the job's code or inputs could not be fetched: the command never ran
_PR_SET_PDEATHSIG = 1
_STOP_GRACE_S = 5.0


def _preexec(memory_mb: int | None) -> None:
    """In the child before exec: die with the parent, and cap the address space like the local runner."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if memory_mb is not None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode


# --- usage: the command's process tree, measured here and reported through the log ----------------------

USAGE_EVERY_S = 5.0
# An OSC escape sequence (ESC ] ... BEL), written whole: the server's log follower takes it out of the job's
# log (ray_executor.split_usage); a terminal that shows Ray's raw log ignores it.
USAGE_RECORD = "\x1b]openarts-usage;{cpu:.1f};{memory:.1f}\x07"
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _processes() -> dict[int, tuple[int, float, int]]:
    """Every process of this node: pid -> (parent pid, CPU seconds, resident bytes), from /proc."""
    found: dict[int, tuple[int, float, int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                fields = stat_file.read().rsplit(b")", 1)[1].split()  # after the command's name
        except OSError:  # gone meanwhile
            continue
        # Fields 4, 14, 15 and 24 of proc(5), counted from the state (field 3).
        ppid, utime, stime, rss = int(fields[1]), int(fields[11]), int(fields[12]), int(fields[21])
        found[int(entry.name)] = (ppid, (utime + stime) / _TICKS, rss * _PAGE)
    return found


def tree_usage(root: int) -> dict[int, tuple[float, int]]:
    """The process ``root`` and its descendants: pid -> (CPU seconds, resident bytes)."""
    processes = _processes()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in processes.items():
        children.setdefault(ppid, []).append(pid)
    tree: dict[int, tuple[float, int]] = {}
    pending = [root]
    while pending:
        pid = pending.pop()
        if pid in processes and pid not in tree:
            tree[pid] = processes[pid][1:]
            pending += children.get(pid, [])
    return tree


def _report_usage(root: int, done: threading.Event, every_s: float) -> None:
    """Every ``every_s``: the CPU (100 = one core, over the last interval) and memory of the command's tree,
    as one record in the log. A process that ended meanwhile counts no more; one born meanwhile counts its
    whole CPU time. The first look only sets the baseline."""
    previous = tree_usage(root)
    last = time.monotonic()
    while not done.wait(every_s):
        current = tree_usage(root)
        now = time.monotonic()
        spent = sum(cpu - previous.get(pid, (0.0, 0))[0] for pid, (cpu, _) in current.items())
        memory = sum(rss for _, rss in current.values())
        record = USAGE_RECORD.format(cpu=max(0.0, spent) * 100 / max(now - last, 1e-6), memory=memory / 2**20)
        os.write(1, record.encode())  # stdout, the job's log; one write: never split by the command's output
        previous, last = current, now


def run_command(job: dict[str, Any], extra_env: dict[str, str], *, report_usage: bool = False) -> int:
    """Run the job's command here and return its exit code; SIGTERM to this process is passed on. With
    ``report_usage``, the command tree's CPU and memory go to the log every ``USAGE_EVERY_S``."""
    cwd = job["cwd"]
    if not os.path.isdir(cwd):
        print(
            f"[openarts] the job's folder {cwd} does not exist on node {socket.gethostname()}: every Ray node "
            "must share the OpenArts data folder at the same path (OPENARTS_RAY_SHARED_FS)",
            flush=True,
        )
        return EXIT_NO_FOLDER
    env = dict(job["env"])
    # Ray chose the GPUs of this node for the job (entrypoint_num_gpus, or the task's num_gpus).
    if "CUDA_VISIBLE_DEVICES" in os.environ and job.get("gpus_per_node"):
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    env.update(extra_env)
    os.makedirs(env.get("TMPDIR") or os.path.join(cwd, "tmp"), exist_ok=True)
    memory_mb = job.get("memory_mb")
    try:
        process = subprocess.Popen(  # noqa: S603 - an argv list, never a shell
            job["argv"],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            preexec_fn=lambda: _preexec(memory_mb),  # prctl and setrlimit only
        )
    except FileNotFoundError:
        print(f"[openarts] command not found: {job['argv'][0]}", flush=True)
        return 127
    except PermissionError:
        print(f"[openarts] command cannot be executed: {job['argv'][0]}", flush=True)
        return 126

    def forward(signum: int, frame: object) -> None:
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    done = threading.Event()
    if report_usage:
        every_s = float(job.get("usage_every_s") or USAGE_EVERY_S)
        threading.Thread(target=_report_usage, args=(process.pid, done, every_s), daemon=True).start()
    try:
        while True:
            try:
                return _exit_code(process.wait())
            except KeyboardInterrupt:  # a cancelled Ray task, or SIGINT: stop the command, then report it
                process.terminate()
                try:
                    return _exit_code(process.wait(timeout=_STOP_GRACE_S))
                except subprocess.TimeoutExpired:
                    process.kill()
    finally:
        done.set()
        signal.signal(signal.SIGTERM, previous)


# --- staging: the job's folder on a node that does not share the server's -------------------------------

STAGING_LOCK = ".openarts-staging.lock"  # held while the node's copy is fetched or removed
STAGING_USERS = ".openarts-staging.users"  # held shared by every process using the node's copy
STAGED_MARKER = ".openarts-staged"  # the copy is complete
_COPY_CHUNK = 1024 * 1024
_MAX_KEY_BYTES = 1024
_REPORT_POLL_S = 0.2  # how often a report file is looked for while the command runs
_PUNCTUATION = frozenset("-_.+=@,~()!' ")
_SOURCE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DEST_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


class StagingError(Exception):
    pass


def segment_problem(segment: str) -> str | None:
    """Why a name cannot be one step of an object key: the grammar of ``openarts.storage.paths`` (which
    cannot be imported on a node), so that the node copies exactly what the server's store would."""
    if segment in ("", ".", ".."):
        return "not a name"
    if not all(_allowed(char, "LN") for char in segment):
        return "a character is not allowed"
    if len(segment.encode("utf-8")) > 255:
        return "longer than 255 bytes"
    normalised = unicodedata.normalize("NFKC", segment)
    if normalised in (".", "..") or not all(_allowed(char, "LNM") for char in normalised):
        return "it contains a look-alike of a dot or a slash"
    return None


def _allowed(char: str, categories: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in _PUNCTUATION
    return unicodedata.category(char)[0] in categories


def split_url(url: str) -> tuple[str, str]:
    """``obs://bucket/key`` (the server wrote it, in the grammar) as (bucket, key)."""
    if not url.startswith("obs://"):
        raise StagingError(f"not an obs:// URL: {url}")
    bucket, _, key = url[len("obs://") :].partition("/")
    return bucket, key


class S3fsStore:
    """The object store through s3fs (what the server uses)."""

    def __init__(self, config: dict[str, Any]) -> None:
        s3fs: Any = importlib.import_module("s3fs")  # untyped, and optional on a node
        self.fs = s3fs.S3FileSystem(
            key=config.get("access_key"),
            secret=config.get("secret_key"),
            client_kwargs={"endpoint_url": config["endpoint"]},
            use_listings_cache=False,
            skip_instance_cache=True,
        )

    def keys(self, bucket: str, prefix: str) -> list[str]:
        """The object keys below the directory ``prefix`` (ending in "/", or "" for the bucket)."""
        keys = (name.partition("/")[2] for name in self.fs.find(f"{bucket}/{prefix}".rstrip("/")))
        return sorted(key for key in keys if key.startswith(prefix) and not key.endswith("/"))

    def is_dir(self, bucket: str, prefix: str) -> bool:
        return bool(self.fs.isdir(f"{bucket}/{prefix}".rstrip("/")))

    def is_file(self, bucket: str, key: str) -> bool:
        return bool(self.fs.isfile(f"{bucket}/{key}"))

    def read(self, bucket: str, key: str, sink: IO[bytes]) -> None:
        with self.fs.open(f"{bucket}/{key}", "rb") as source:
            shutil.copyfileobj(source, sink, _COPY_CHUNK)

    def write(self, bucket: str, key: str, source: IO[bytes]) -> None:
        with self.fs.open(f"{bucket}/{key}", "wb") as sink:
            shutil.copyfileobj(source, sink, _COPY_CHUNK)


class Boto3Store:
    """The object store through boto3, for nodes that have it but not s3fs."""

    def __init__(self, config: dict[str, Any]) -> None:
        boto3: Any = importlib.import_module("boto3")
        self.client = boto3.client(
            "s3",
            endpoint_url=config["endpoint"],
            aws_access_key_id=config.get("access_key"),
            aws_secret_access_key=config.get("secret_key"),
        )

    def _listed(self, bucket: str, prefix: str, **options: Any) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **options):
            for item in page.get("Contents", []):
                yield str(item["Key"])

    def keys(self, bucket: str, prefix: str) -> list[str]:
        return sorted(key for key in self._listed(bucket, prefix) if not key.endswith("/"))

    def is_dir(self, bucket: str, prefix: str) -> bool:
        return next(iter(self._listed(bucket, prefix, PaginationConfig={"MaxItems": 1})), None) is not None

    def is_file(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def read(self, bucket: str, key: str, sink: IO[bytes]) -> None:
        self.client.download_fileobj(bucket, key, sink)

    def write(self, bucket: str, key: str, source: IO[bytes]) -> None:
        self.client.upload_fileobj(source, bucket, key)


def open_store(config: dict[str, Any]) -> S3fsStore | Boto3Store:
    """The store the node can reach: through s3fs, else boto3."""
    try:
        return S3fsStore(config)
    except ImportError:
        pass
    try:
        return Boto3Store(config)
    except ImportError:
        raise StagingError("neither s3fs nor boto3 is installed on this node: pip install s3fs") from None


def inside(root: str, relative: str) -> str:
    """``root/relative`` for a path the server named, refused if it would lead out of ``root``."""
    parts = relative.split("/")
    if relative.startswith("/") or any(part in ("", ".", "..") for part in parts):
        raise StagingError(f"not a relative path: {relative!r}")
    return os.path.join(root, *parts)


def _make_dirs(path: str, root: str) -> None:
    os.makedirs(path, mode=0o700, exist_ok=True)
    real = os.path.realpath(path)
    if os.path.commonpath([real, os.path.realpath(root)]) != os.path.realpath(root):
        raise StagingError(f"{path} leads out of the job's folder")


def _fetch(store: S3fsStore | Boto3Store, bucket: str, key: str, target: str, root: str) -> int:
    _make_dirs(os.path.dirname(target), root)
    fd = os.open(target, _DEST_FLAGS, 0o666)
    with os.fdopen(fd, "wb") as sink:
        store.read(bucket, key, sink)
        return sink.tell()


def download(store: S3fsStore | Boto3Store, url: str, root: str, relative: str) -> tuple[int, int]:
    """As ``ObjectStore.download``: a directory URL's tree into ``root/relative``, an object URL to
    ``root/relative/<name>``. Keys with a name outside the grammar are skipped, as the store's listing
    skips them. Returns (files, bytes)."""
    bucket, key = split_url(url)
    folder = inside(root, relative)
    _make_dirs(folder, root)
    if key and not key.endswith("/"):
        if not store.is_file(bucket, key):
            raise StagingError(f"{url} does not exist")
        return 1, _fetch(store, bucket, key, os.path.join(folder, key.rpartition("/")[2]), root)
    keys = store.keys(bucket, key)
    if not keys and not store.is_dir(bucket, key):
        raise StagingError(f"{url} does not exist")
    files = size = 0
    for found in keys:
        segments = found[len(key) :].split("/")
        problem = next((p for p in map(segment_problem, segments) if p), None)
        if problem:
            print(f"[openarts] not downloading obs://{bucket}/{found}: {problem}", flush=True)
            continue
        size += _fetch(store, bucket, found, os.path.join(folder, *segments), root)
        files += 1
    return files, size


def upload(store: S3fsStore | Boto3Store, folder: str, url: str) -> int:
    """As ``ObjectStore.upload`` of a folder: its tree under the directory ``url``; links, special files
    and names outside the grammar are skipped with a line in the log. Returns the number of files."""
    bucket, key = split_url(url)
    prefix = key if not key or key.endswith("/") else key + "/"
    files = 0
    for here, dirnames, filenames in os.walk(folder, followlinks=False):
        relative = os.path.relpath(here, folder)
        base = prefix if relative == "." else prefix + relative.replace(os.sep, "/") + "/"
        for name in list(dirnames):
            problem = "it is a symbolic link" if os.path.islink(os.path.join(here, name)) else segment_problem(name)
            if problem:
                print(f"[openarts] not uploading {os.path.join(here, name)}: {problem}", flush=True)
                dirnames.remove(name)
        for name in sorted(filenames):
            path = os.path.join(here, name)
            problem = segment_problem(name)
            if problem is None and len((base + name).encode("utf-8")) > _MAX_KEY_BYTES:
                problem = f"the object key would be longer than {_MAX_KEY_BYTES} bytes"
            if problem is None:
                problem = _upload_file(store, path, bucket, base + name)
            if problem:
                print(f"[openarts] not uploading {path}: {problem}", flush=True)
            else:
                files += 1
    return files


def _upload_file(store: S3fsStore | Boto3Store, path: str, bucket: str, key: str) -> str | None:
    """Upload one regular file, never through a link; why it was skipped, or None."""
    try:
        fd = os.open(path, _SOURCE_FLAGS)
    except OSError as exc:  # ELOOP: a symbolic link
        return "it is a symbolic link" if os.path.islink(path) else str(exc.strerror)
    with os.fdopen(fd, "rb") as source:
        if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
            return "not a regular file"
        os.set_blocking(source.fileno(), True)
        store.write(bucket, key, source)
    return None


@contextlib.contextmanager
def _locked(root: str) -> Iterator[None]:
    fd = os.open(os.path.join(root, STAGING_LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _make_folders(staging: dict[str, Any]) -> None:
    """The folders this process's command line names (a search trial's own output subfolder among them)."""
    root = staging["root"]
    for relative in staging.get("folders", []):
        _make_dirs(inside(root, relative), root)


def _stage_in(staging: dict[str, Any], store: S3fsStore | Boto3Store) -> str:
    """Fetch the code and inputs into the job's folder on this node; what was done, for the log."""
    root = staging["root"]
    started = time.monotonic()
    _make_folders(staging)
    files = size = 0
    for item in staging.get("downloads", []):
        try:
            count, length = download(store, item["url"], root, item["path"])
        except Exception as exc:
            raise StagingError(f"{item['name']} ({item['url']}) could not be downloaded: {_reason(exc)}") from exc
        files, size = files + count, size + length
    return f"{files} files, {size} bytes in {time.monotonic() - started:.1f} s"


def _stage_out(staging: dict[str, Any], store: S3fsStore | Boto3Store) -> None:
    """Upload every output folder; a failure is reported and the others still go."""
    root = staging["root"]
    for item in staging.get("uploads", []):
        folder = inside(root, item["path"])
        if not os.path.isdir(folder):
            continue
        try:
            upload(store, folder, item["url"])
        except Exception as exc:
            print(f"[openarts] output {item['name']} could not be uploaded: {_reason(exc)}", flush=True)


def _report(staging: dict[str, Any], store: S3fsStore | Boto3Store, done: threading.Event) -> None:
    """Upload each report file (a model server's port) as soon as it appears, until the command ends: the
    server waits for it in the store, as it would read it from a shared folder."""
    pending = list(staging.get("reports", []))
    failed: set[str] = set()
    while pending and not done.wait(_REPORT_POLL_S):
        for item in list(pending):
            path = inside(staging["root"], item["path"])
            if not os.path.lexists(path):
                continue
            bucket, key = split_url(item["url"])
            try:
                problem = _upload_file(store, path, bucket, key)
            except Exception as exc:  # the store briefly away: tried again next time, said once
                if item["name"] not in failed:
                    print(f"[openarts] report {item['name']} could not be uploaded: {_reason(exc)}", flush=True)
                    failed.add(item["name"])
                continue
            if problem:
                print(f"[openarts] report {item['name']} not uploaded: {problem}", flush=True)
            pending.remove(item)


@contextlib.contextmanager
def _reporting(staging: dict[str, Any], store: S3fsStore | Boto3Store) -> Iterator[None]:
    """``_report`` in a thread for the duration of the block (the command's run)."""
    if not staging.get("reports"):
        yield
        return
    done = threading.Event()
    thread = threading.Thread(target=_report, args=(staging, store, done), name="openarts-reports", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=10)


def _remove_copy(staging: dict[str, Any]) -> None:
    root = staging["root"]
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(root, STAGED_MARKER))
    tops = {relative.split("/")[0] for relative in staging.get("folders", [])}
    transfers = staging.get("downloads", []) + staging.get("uploads", []) + staging.get("reports", [])
    tops.update(item["path"].split("/")[0] for item in transfers)
    for top in sorted(tops):
        path = inside(root, top)
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        else:
            shutil.rmtree(path, ignore_errors=True)


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_staged(job: dict[str, Any], extra_env: dict[str, str], *, report_usage: bool = False) -> int:
    """Run the job's command here, staging its folder from the object store first when the job says so,
    and uploading its outputs afterwards; the exit code is the command's (or EXIT_STAGING_FAILED)."""
    staging = job.get("staging")
    if not staging:
        return run_command(job, extra_env, report_usage=report_usage)
    root = staging["root"]
    node = socket.gethostname()
    try:
        store = open_store(staging["store"])
        os.makedirs(root, mode=0o700, exist_ok=True)
        users = os.open(os.path.join(root, STAGING_USERS), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except Exception as exc:
        print(f"[openarts] staging failed on node {node}: {_reason(exc)}", flush=True)
        return EXIT_STAGING_FAILED
    try:
        with _locked(root):
            fcntl.flock(users, fcntl.LOCK_SH)  # taken under the lock: the copy cannot be removed from now on
            if not os.path.exists(os.path.join(root, STAGED_MARKER)):
                try:
                    done = _stage_in(staging, store)
                except Exception as exc:
                    print(f"[openarts] staging failed on node {node}: {_reason(exc)}", flush=True)
                    return EXIT_STAGING_FAILED
                os.close(os.open(os.path.join(root, STAGED_MARKER), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o600))
                print(f"[openarts] staged the job's folder on node {node} from the object store ({done})", flush=True)
            else:
                # Another process of the job (a trial) made the copy: this one's own folders may be missing.
                try:
                    _make_folders(staging)
                except Exception as exc:
                    print(f"[openarts] staging failed on node {node}: {_reason(exc)}", flush=True)
                    return EXIT_STAGING_FAILED
        with _reporting(staging, store):
            code = run_command(job, extra_env, report_usage=report_usage)
        _stage_out(staging, store)
        return code
    finally:
        fcntl.flock(users, fcntl.LOCK_UN)
        with _locked(root):
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # nobody else on this node uses the copy
            except BlockingIOError:
                pass
            else:
                _remove_copy(staging)
                fcntl.flock(users, fcntl.LOCK_UN)
        os.close(users)


def _node_address() -> str:
    import ray

    # Through a typed name: Ray's function has no annotations (and Ray may be absent when type-checking).
    get: Callable[[], str] = ray.util.get_node_ip_address
    return get()


def _rendezvous() -> tuple[str, int]:
    """This node's address and a free port on it: where rank 0 will listen."""
    address = _node_address()
    with socket.socket() as probe:
        probe.bind(("", 0))
        port = int(probe.getsockname()[1])
    return address, port


def _rank(job: dict[str, Any], rank: int, master: tuple[str, int]) -> int:
    world = int(job["nodes"])
    extra = {
        "RANK": str(rank),
        "NODE_RANK": str(rank),
        "LOCAL_RANK": "0",
        "WORLD_SIZE": str(world),
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": master[0],
        "MASTER_PORT": str(master[1]),
    }
    print(f"[openarts] rank {rank}/{world} on {_node_address()}", flush=True)
    return run_staged(job, extra)


def run_distributed(job: dict[str, Any]) -> int:
    # Ray's driver would merge the ranks' lines that differ only in numbers ("epoch 1 loss 0.5" from each)
    # and hold them back: every line of every rank must reach the job's log. Read by Ray at import; the
    # ranks' commands get the job's own environment, not this one.
    os.environ["RAY_DEDUP_LOGS"] = "0"
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    nodes = int(job["nodes"])
    bundle: dict[str, float] = {"CPU": float(job.get("cpus_per_node") or 1)}
    if job.get("gpus_per_node"):
        bundle["GPU"] = float(job["gpus_per_node"])
    if job.get("memory_bytes_per_node"):
        bundle["memory"] = float(job["memory_bytes_per_node"])
    ray.init(address="auto", log_to_driver=True)
    group = placement_group([dict(bundle) for _ in range(nodes)], strategy="STRICT_SPREAD")
    print(f"[openarts] waiting for {nodes} nodes with {bundle} each", flush=True)
    ray.get(group.ready())

    def on(index: int) -> PlacementGroupSchedulingStrategy:
        return PlacementGroupSchedulingStrategy(placement_group=group, placement_group_bundle_index=index)

    # Nothing is retried: a user's command must not run twice because a node went away.
    options: dict[str, Any] = {"num_cpus": bundle["CPU"], "num_gpus": bundle.get("GPU", 0), "max_retries": 0}
    master = ray.get(ray.remote(_rendezvous).options(scheduling_strategy=on(0), **options).remote())
    remote_rank = ray.remote(_rank)
    refs = [remote_rank.options(scheduling_strategy=on(i), **options).remote(job, i, master) for i in range(nodes)]

    def stop(signum: int, frame: object) -> None:
        for ref in refs:
            ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its command and reports

    signal.signal(signal.SIGTERM, stop)
    codes: dict[int, int] = {}
    pending = list(refs)
    failure: str | None = None
    while pending and failure is None:
        done, pending = ray.wait(pending, num_returns=1)
        index = refs.index(done[0])
        try:
            codes[index] = int(ray.get(done[0]))
        except ray.exceptions.RayError as exc:
            failure = f"rank {index} was lost: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        else:
            if codes[index] != 0:
                time.sleep(1.0)  # let the other ranks notice a peer's end on their own first
    if failure is not None:
        print(f"[openarts] the job failed: {failure}", flush=True)
        for ref in pending:
            ray.cancel(ref, force=True)
        remove_placement_group(group)
        return EXIT_LOST_RANK
    remove_placement_group(group)
    if codes.get(0, 0) != 0:
        return codes[0]
    return next((code for _, code in sorted(codes.items()) if code != 0), 0)


def main() -> int:
    job = json.loads(os.environ.pop("OPENARTS_RAY_JOB"))
    if int(job.get("nodes") or 1) > 1:
        return run_distributed(job)  # no usage: Ray would prefix the ranks' records and hold them back
    return run_staged(job, {}, report_usage=True)


if __name__ == "__main__":
    sys.exit(main())
