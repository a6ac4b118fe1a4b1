"""The local-process backend: each job is a runner process (see ``runner.py``) in its own session.

A job must outlive the server, even a ``kill -9`` of it, and be found again after a restart. So:

- the runner is started with ``start_new_session=True``: it is no child of the server's process group
  and no signal meant for the server reaches it;
- a process is identified by its pid and its start time together, never by pid alone, because pids
  are reused; a signal is sent only after that check;
- the exit code is read from the runner's exit file, since a restarted server cannot ``wait()`` for a
  process it did not start. Runners this server did start are its children and are reaped here, so no
  zombie accumulates.

A spec with ``via_launcher`` (the trials of a search: many short processes) is started by this
executor's launcher (``runner.py --launcher``, started on first use), which is the runner of every
command it starts: no interpreter per job, a millisecond instead of tens. The launcher records each exit
code, reports each exit, and writes ``EXIT_FILE.pid`` by which ``find`` recognises a command after a
crash. Where the launcher cannot run (no pidfd), or cannot start a command, the runner is started as
usual.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import psutil

from openarts.compute.executor import (
    BASE_LANG,
    ExitRecord,
    LaunchSpec,
    Outcome,
    ProcessHandle,
    Usage,
    job_environment,
    read_exit_record,
)
from openarts.compute.runner import PID_FILE_SUFFIX

log = logging.getLogger(__name__)

# The runner's path is on every runner's command line: it is how ``find`` (and people, with ps) recognise
# a job's processes. It runs under -I -S (isolated: the job's folder is not on sys.path; see runner.py),
# from its cached bytecode: BOOTSTRAP appends the runner's folder to sys.path (after the standard library,
# so nothing there is shadowed) and imports it, where running the file would compile it on every start.
RUNNER_PATH = str(Path(__file__).with_name("runner.py"))
RUNNER_BOOTSTRAP = (
    "import sys;sys.path.append(sys.argv[1].rpartition('/')[0]);import runner;sys.exit(runner.main(sys.argv[2:]))"
)
RUNNER_ARGV = [sys.executable, "-I", "-S", "-c", RUNNER_BOOTSTRAP, RUNNER_PATH]
# psutil's start time adds the boot time, which moves a little when the wall clock is adjusted (NTP).
# Two processes with one pid cannot start within this window of each other in practice.
_START_TIME_TOLERANCE_S = 1.0
# How long ``outcome`` waits for a runner that has recorded its exit code to be gone.
_EXIT_GRACE_S = 2.0
# How long a launcher may take to start, and to answer one request (it forks: milliseconds).
_LAUNCHER_START_S = 30.0
_LAUNCHER_ANSWER_S = 30.0
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class LocalExecutor:
    """Implements ``Executor`` with local processes. Thread-safe: controllers may share one instance."""

    stages_remotely = False  # the jobs run in the server's own folders, which the server stages

    def __init__(self, on_exit: Callable[[], None] | None = None) -> None:
        """``on_exit`` is called (from a helper thread) whenever a runner this instance started exits, so a
        controller can react at once instead of on its next poll; re-adopted runners are still polled."""
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._children: dict[int, subprocess.Popen[bytes]] = {}  # runners started by this process
        self._cpu_samples: dict[ProcessHandle, dict[int, psutil.Process]] = {}
        self._launcher_lock = threading.Lock()  # one request at a time; also guards the slot
        self._slot = _LauncherSlot()
        weakref.finalize(self, self._slot.close)  # an executor dropped lets its launcher go

    def close(self) -> None:
        """Let the launcher go, if one was started (its commands carry on). The executor stays usable."""
        with self._launcher_lock:
            self._slot.close()

    # --- starting ---------------------------------------------------------------------------------------

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        if spec.nodes != 1:  # one machine: a job over several nodes needs a cluster (the Ray executor)
            raise ValueError(f"a local job runs on one node, not {spec.nodes}")
        if not spec.argv or not all(isinstance(arg, str) for arg in spec.argv):
            raise ValueError("argv must be a non-empty list of strings")
        if spec.memory_limit_mb is not None and spec.memory_limit_mb <= 0:
            raise ValueError("memory_limit_mb must be positive")
        env = job_environment(spec)
        (spec.cwd / "tmp").mkdir(parents=True, exist_ok=True)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.exit_path.parent.mkdir(parents=True, exist_ok=True)
        # A launch owns its exit file: one left by an earlier attempt would end this one at once.
        spec.exit_path.unlink(missing_ok=True)
        _pid_file(spec.exit_path).unlink(missing_ok=True)
        # Created here whichever way the runner starts, so that the log exists once launch returns.
        log_fd = os.open(spec.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if spec.via_launcher and (forked := self._launch_via_launcher(spec, env)) is not None:
                return forked
            argv = [*RUNNER_ARGV, "--exit-file", str(spec.exit_path)]
            if spec.memory_limit_mb is not None:
                argv += ["--memory-mb", str(spec.memory_limit_mb)]
            argv += ["--", *spec.argv]
            process = subprocess.Popen(  # noqa: S603 - an argv list, never a shell
                argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own session and group: survives the server, signalled as one
                close_fds=True,
            )
        finally:
            os.close(log_fd)
        # Read before anything polls it: until reaped, even a runner that already exited still has it.
        start_time = psutil.Process(process.pid).create_time()
        with self._lock:
            self._children[process.pid] = process
        if self._on_exit is not None:
            threading.Thread(target=self._notify_exit, args=(process,), name="runner-exit", daemon=True).start()
        return ProcessHandle(pid=process.pid, start_time=start_time)

    def _notify_exit(self, process: subprocess.Popen[bytes]) -> None:
        process.wait()
        if self._on_exit is not None:
            self._on_exit()

    def warm_up(self) -> None:
        """Start the launcher now, in the background, if launches ``via_launcher`` are to come."""
        with self._launcher_lock:
            self._ready_launcher()

    def _ready_launcher(self) -> _Launcher | None:
        """The launcher, started if need be (the caller holds the launcher lock); None if it cannot run."""
        slot = self._slot
        if slot.unsupported:
            return None
        if slot.launcher is None or not slot.launcher.alive:
            try:
                slot.launcher = _Launcher(self._on_exit)
            except OSError as exc:
                log.warning("runners are started one by one: the launcher cannot start (%s)", exc)
                slot.unsupported = True
                return None
        return slot.launcher

    def _launch_via_launcher(self, spec: LaunchSpec, env: dict[str, str]) -> ProcessHandle | None:
        """The command started by the launcher; None when no launcher started it (nothing runs)."""
        request: dict[str, object] = {
            "argv": spec.argv,
            "cwd": str(spec.cwd),
            "env": env,
            "log": str(spec.log_path),
            "exit": str(spec.exit_path),
            "memory_mb": spec.memory_limit_mb,
        }
        with self._launcher_lock:
            launcher = self._ready_launcher()
            if launcher is None:
                return None
            try:
                pid, ticks = launcher.start(request)
            except _LauncherUnsupportedError as exc:
                log.warning("runners are started one by one: the launcher cannot run (%s)", exc)
                self._slot.unsupported = True
                return None
            except _LauncherUnavailableError:
                return None  # it was gone before it read the request, or refused it: start the runner as usual
            except OSError:
                # It went, or hung, while starting the runner: whether the runner exists, its pid file says.
                self._slot.close()
                found = _from_pid_file(spec.exit_path)
                if found is None:
                    raise
                return found
        return ProcessHandle(pid=pid, start_time=_start_time(ticks))

    # --- watching ---------------------------------------------------------------------------------------

    def is_alive(self, handle: ProcessHandle) -> bool:
        self._reap()
        return _same_process_running(handle)

    def host_of(self, handle: ProcessHandle) -> str | None:
        return "127.0.0.1"  # every process runs on this machine

    def outcome(self, handle: ProcessHandle, exit_path: Path) -> Outcome | None:
        record = read_exit_record(exit_path)
        if record is None:
            if self.is_alive(handle):
                return None
            # A runner writes the file just before it exits: look once more now that it is gone. A launcher
            # writes it for its command after the command exited, before reaping it: wait for it meanwhile.
            record = read_exit_record(exit_path) or _record_once_reaped(handle, exit_path)
        self._forget_samples(handle)
        if record is not None:
            self._await_exit(handle)
            return Outcome(exit_code=record.exit_code, lost=False, ended_at=record.ended_at)
        # The runner died without a word (SIGKILL, OOM killer). Whatever it left in its group would run on
        # unaccounted for, holding capacity and writing to a finished job's log: end it.
        _kill_orphaned_group(handle)
        return Outcome(exit_code=None, lost=True)

    def usage(self, handle: ProcessHandle) -> Usage:
        if not self.is_alive(handle):
            self._forget_samples(handle)
            return Usage(cpu_percent=0.0, memory_mb=0.0)
        try:
            root = psutil.Process(handle.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            return Usage(cpu_percent=0.0, memory_mb=0.0)
        with self._lock:
            previous = self._cpu_samples.get(handle, {})
        current: dict[int, psutil.Process] = {}
        cpu = 0.0
        memory = 0.0
        for process in tree:
            try:  # any process may exit mid-scan: count what is still there
                memory += process.memory_info().rss
                percent, sampled = _cpu_percent(process, previous.get(process.pid))
            except psutil.Error:
                continue
            cpu += percent
            current[process.pid] = sampled
        with self._lock:
            self._cpu_samples[handle] = current
        return Usage(cpu_percent=cpu, memory_mb=memory / (1024 * 1024))

    # --- stopping ---------------------------------------------------------------------------------------

    def terminate(self, handle: ProcessHandle) -> None:
        self._signal_group(handle, signal.SIGTERM)

    def kill(self, handle: ProcessHandle) -> None:
        """SIGKILL the whole group, the runner included: no exit code is recorded (the outcome is lost).
        A command started by the launcher has no runner of its own: it ends with 137 recorded."""
        self._signal_group(handle, signal.SIGKILL)

    def _signal_group(self, handle: ProcessHandle, signum: signal.Signals) -> None:
        # Checked first so that a stale handle never signals a stranger that inherited the pid.
        if not self.is_alive(handle):
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(handle.pid, signum)

    # --- finding after a crash --------------------------------------------------------------------------

    def find(self, exit_path: Path) -> ProcessHandle | None:
        """The live runner recording into ``exit_path``, if any.

        For a controller that crashed between starting a job and saving its handle: the exit path is
        unique to a job attempt and is on the runner's command line, so the job can be adopted instead of
        started twice.
        """
        self._reap()
        launched = _from_pid_file(exit_path)  # a command started by a launcher (the cheap check first)
        if launched is not None:
            return launched
        wanted = str(exit_path)
        for process in psutil.process_iter(["cmdline", "create_time"]):
            cmdline = process.info.get("cmdline") or []
            if RUNNER_PATH not in cmdline or "--" not in cmdline:
                continue
            options = cmdline[: cmdline.index("--")]
            created = process.info.get("create_time")
            if created is not None and any(a == "--exit-file" and b == wanted for a, b in itertools.pairwise(options)):
                handle = ProcessHandle(pid=process.pid, start_time=created)
                if _same_process_running(handle):
                    return handle
        return None

    # --- bookkeeping ------------------------------------------------------------------------------------

    def _reap(self) -> None:
        """Collect the exit status of runners this server started, so none lingers as a zombie."""
        with self._lock:
            for pid, process in list(self._children.items()):
                if process.poll() is not None:
                    del self._children[pid]

    def _await_exit(self, handle: ProcessHandle) -> None:
        """Give a runner that has recorded its exit code the moment it needs to exit (and reap it).

        Once an outcome is reported the job is over; a caller that then asks ``is_alive`` should hear no.
        The runner exits right after its atomic rename, so this takes milliseconds; the bound only
        protects the caller from a runner stuck in a slow fsync.
        """
        with self._lock:
            child = self._children.get(handle.pid)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=_EXIT_GRACE_S)
            self._reap()
            return
        deadline = time.monotonic() + _EXIT_GRACE_S
        while _same_process_running(handle) and time.monotonic() < deadline:
            time.sleep(0.002)  # it exits right after its rename: short naps, since a search waits on it

    def _forget_samples(self, handle: ProcessHandle) -> None:
        with self._lock:
            self._cpu_samples.pop(handle, None)


class _LauncherUnavailableError(Exception):
    """The launcher did not take the request: nothing was started."""


class _LauncherUnsupportedError(_LauncherUnavailableError):
    """The launcher cannot run here (no pidfd): nothing was started, and nothing will be."""


class _LauncherSlot:
    """An executor's launcher, kept apart from the executor so that a finalizer can close it."""

    def __init__(self) -> None:
        self.launcher: _Launcher | None = None
        self.unsupported = False  # it cannot run here: runners are started one by one

    def close(self) -> None:
        launcher, self.launcher = self.launcher, None
        if launcher is not None:
            launcher.close()


class _Launcher:
    """The server's end of one launcher process (see runner.py): requests in; pids and exits out.

    Requests go one at a time (the caller holds a lock) and each gets one answer, in order. A reader
    thread sorts the launcher's lines: answers go to the waiting request, exit reports to ``on_exit``.
    Starting one returns at once; the first request waits for it to say it is ready.
    """

    def __init__(self, on_exit: Callable[[], None] | None) -> None:
        self._on_exit = on_exit
        self._answers: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._ready = False
        self._process = subprocess.Popen(  # noqa: S603 - an argv list, never a shell
            [*RUNNER_ARGV, "--launcher"],
            cwd="/",  # holds no job's folder
            env={"LANG": BASE_LANG, "PATH": os.defpath},  # each runner gets its own job's environment
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # like a runner: survives the server, no signal meant for it arrives
            close_fds=True,
        )
        self.alive = True
        self._reader = threading.Thread(target=self._read, name="runner-launcher", daemon=True)
        self._reader.start()

    def start(self, request: dict[str, object]) -> tuple[int, int]:
        """The started command's pid and start time in clock ticks.

        Raises ``_LauncherUnavailableError`` when the launcher did not take the request (nothing was
        started), and ``OSError`` when it took it but did not answer: the command may exist.
        """
        if not self._ready:
            self._ready = self._answer(_LAUNCHER_START_S) == "ready"
            if not self._ready:
                self.close()
                raise _LauncherUnsupportedError("it did not start")
        stdin = self._process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps(request).encode() + b"\n")
            stdin.flush()
        except (OSError, ValueError) as exc:
            self.alive = False
            raise _LauncherUnavailableError(str(exc)) from exc
        answer = self._answer(_LAUNCHER_ANSWER_S)
        if answer is None:
            self.alive = False
            raise OSError("the launcher did not answer")
        kind, _, rest = answer.partition(" ")
        if kind == "started":
            pid, ticks = rest.split()
            return int(pid), int(ticks)
        message = json.loads(rest) if kind == "failed" else answer
        raise _LauncherUnavailableError(f"the launcher could not start it: {message}")

    def _answer(self, timeout: float) -> str | None:
        try:
            return self._answers.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Let the launcher go (EOF on its stdin): it stays until the commands it started have ended."""
        self.alive = False
        with contextlib.suppress(OSError, ValueError):
            if self._process.stdin is not None:
                self._process.stdin.close()

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        for raw in stdout:
            line = raw.decode(errors="replace").strip()
            if line.startswith("exited "):
                self._notify()
            else:
                self._answers.put(line)
        self.alive = False
        self._answers.put(None)
        self._process.wait()  # reaped: the launcher is this server's child
        self._notify()  # its runners' exits are no longer reported: let the controller look

    def _notify(self) -> None:
        if self._on_exit is None:
            return
        try:
            self._on_exit()
        except Exception:  # this thread must go on sorting answers, whatever the callback does
            log.exception("the launcher's exit callback failed")


def _pid_file(exit_path: Path) -> Path:
    return exit_path.with_name(exit_path.name + PID_FILE_SUFFIX)


def _start_time(ticks: int) -> float:
    """psutil's create_time() of a process that started ``ticks`` clock ticks after boot."""
    return ticks / _CLOCK_TICKS + _boot_time()


_boot_time_cache: tuple[float, float] = (-float("inf"), 0.0)  # (when read, on time.monotonic(); boot time)


def _boot_time() -> float:
    """psutil.boot_time(), read again at most once a second.

    Asked for every process looked at, it would read /proc/stat each time, a file the kernel composes from
    per-CPU figures: the largest part of watching a short process. It moves only with the wall clock.
    """
    global _boot_time_cache
    read_at, boot = _boot_time_cache
    now = time.monotonic()
    if now - read_at > 1.0:
        boot = psutil.boot_time()
        _boot_time_cache = (now, boot)
    return boot


def _process_state(handle: ProcessHandle) -> bytes | None:
    """The state letter of the handle's process (``b"Z"``: a zombie), or None if it is gone: no such pid,
    or the pid now belongs to another process (another start time). One read of /proc/PID/stat."""
    try:
        with open(f"/proc/{handle.pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rpartition(b")")[2].split()
        ticks = int(fields[19])
    except (OSError, ValueError, IndexError):
        return None
    if abs(_start_time(ticks) - handle.start_time) > _START_TIME_TOLERANCE_S:
        return None
    return fields[0]


def _from_pid_file(exit_path: Path) -> ProcessHandle | None:
    """The live command named by the pid file a launcher wrote next to ``exit_path``, if any.

    The file gives the pid and the start time in clock ticks; the process must match both exactly (a
    reused pid would have started later) and not be a zombie.
    """
    try:
        pid_text, ticks_text = _pid_file(exit_path).read_text().split()
        pid, ticks = int(pid_text), int(ticks_text)
        with open(f"/proc/{pid}/stat", "rb") as stat_file:
            fields = stat_file.read().rpartition(b")")[2].split()
    except (OSError, ValueError):
        return None
    if len(fields) < 20 or fields[0] == b"Z" or int(fields[19]) != ticks:
        return None
    return ProcessHandle(pid=pid, start_time=_start_time(ticks))


def _record_once_reaped(handle: ProcessHandle, exit_path: Path) -> ExitRecord | None:
    """The exit record of an ended process its parent has not reaped yet (a launcher's command whose exit
    is being recorded); None once it is reaped without one, or after the grace."""
    deadline = time.monotonic() + _EXIT_GRACE_S
    while _unreaped(handle) and time.monotonic() < deadline:
        time.sleep(0.001)
        if (record := read_exit_record(exit_path)) is not None:
            return record
    return read_exit_record(exit_path)


def _unreaped(handle: ProcessHandle) -> bool:
    return _process_state(handle) == b"Z"


def _same_process_running(handle: ProcessHandle) -> bool:
    # A zombie has exited; it lingers only until its parent reaps it.
    return _process_state(handle) not in (None, b"Z")


def _cpu_percent(process: psutil.Process, seen: psutil.Process | None) -> tuple[float, psutil.Process]:
    """CPU since the previous sample of the same process (or its lifetime average on first sight), and
    the object to sample it with next time.

    psutil measures a process between two calls on the same object; keeping the objects between
    ``usage`` calls gives real recent figures without blocking the caller for a sampling interval.
    """
    if seen is not None and abs(seen.create_time() - process.create_time()) <= _START_TIME_TOLERANCE_S:
        return float(seen.cpu_percent(interval=None)), seen
    process.cpu_percent(interval=None)  # the baseline for the next sample
    times = process.cpu_times()
    elapsed = max(time.time() - process.create_time(), 0.01)
    return float((times.user + times.system) / elapsed * 100.0), process


def _kill_orphaned_group(handle: ProcessHandle) -> None:
    """SIGKILL what remains of a job's process group after its runner vanished.

    The group id is the runner's pid. Linux does not hand out a pid while a process group of that id
    exists, so surviving members with that group id are the job's own, provided no other process has
    taken the pid since (checked) and they started after the runner.
    """
    try:
        existing = psutil.Process(handle.pid)
        reused = abs(existing.create_time() - handle.start_time) > _START_TIME_TOLERANCE_S
        if reused or existing.status() != psutil.STATUS_ZOMBIE:
            return  # the pid lives again (a reused pid leads its own group): leave it alone
    except psutil.NoSuchProcess:
        pass
    except psutil.Error:
        return
    for process in psutil.process_iter(["create_time"]):
        try:
            if os.getpgid(process.pid) != handle.pid:
                continue
        except OSError:
            continue
        created = process.info.get("create_time")
        if created is not None and created >= handle.start_time - _START_TIME_TOLERANCE_S:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signal.SIGKILL)
            return
