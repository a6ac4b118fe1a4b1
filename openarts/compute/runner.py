"""The runner: the small parent process of one job's command.

    python -I -S -c BOOTSTRAP .../openarts/compute/runner.py --exit-file PATH [--memory-mb N] -- ARGV...

(``BOOTSTRAP``, in ``local.py``, imports this file's cached bytecode and calls :func:`main`; running the
file itself, ``python -I -S .../runner.py --exit-file ...``, does the same but compiles it first.)

It exists so that a job's result outlives the server. The server starts the runner in a new session and
process group; the runner starts the user's argv as its child in that same group, waits for it, and
records the exit code in ``--exit-file`` atomically. A server killed with ``kill -9`` loses nothing: after
a restart it finds the runner by pid and start time, or reads the exit file if the job has ended.

It runs under ``-I -S`` (isolated, no site packages): the job's folder is not on ``sys.path``, PYTHON*
variables are ignored, so a user's ``resource.py`` cannot shadow what the runner imports, and the
interpreter starts in a few milliseconds. Every job pays for this start-up, so the runner imports only
modules built into the interpreter: ``posix`` rather than ``os`` (whose import reads several files),
``_signal`` rather than ``signal`` (which pulls in ``enum``, a third of the runner's start), and
``resource`` only when a memory limit is asked for. It is started from its cached bytecode because a
script run as ``__main__`` is compiled on every start.

The launcher (``--launcher``) serves processes that start often, such as the trials of a search. It is
one long-lived runner that reads requests on stdin (one JSON object a line) and is itself the runner of
each command it starts: it spawns the command (``posix_spawn``: no copy of an interpreter, which would
cost a millisecond or two of page copying per command) in a session and process group of its own, with
the same log, folder, environment, memory limit and signals as a runner gives its child, watches it by
a pidfd, and records its exit code atomically in its exit file when it ends. The server's handle is then
the command's own pid, also its group's id. The launcher does not depend on the server: when the server
goes (its pipe closes) it takes no more requests, but stays until the commands it started have ended and
their exit codes are recorded. Since a command carries its own command line, not its exit file, the
launcher writes ``EXIT_FILE.pid`` (its pid and start time in clock ticks) for the server to find it
again after a crash. It answers each request with ``started PID TICKS`` once the command runs (or
``failed MESSAGE`` when it could not start it: the server then starts a runner as usual, which reports
the failure as it always does), and reports ``exited PID`` once it has recorded an exit.

What differs from a command under a runner: nothing stands between the command and its exit code, so
a command killed with SIGKILL (or its whole group) ends with 137 recorded instead of a lost outcome; and
the exit codes of a launcher's commands are lost should the launcher itself be killed.

The exit file holds the exit code as plain text (``"0\\n"``); its modification time is when the job ended.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C half of signal, without enum (no stub)
import posix
import sys

TYPE_CHECKING = False  # typing itself is not imported at run time: it would cost every job milliseconds
if TYPE_CHECKING:
    from typing import Any

EXIT_NOT_FOUND = 127  # the shell's conventions, which users and tools already know
EXIT_CANNOT_EXECUTE = 126
EXIT_USAGE = 2
USAGE = "usage: runner.py --exit-file PATH [--memory-mb N] -- ARGV...  |  runner.py --launcher"
PID_FILE_SUFFIX = ".pid"
_DEVNULL = "/dev/null"
_SIGTERM: int = _signal.SIGTERM
_SIGKILL: int = _signal.SIGKILL
_STOP_SIGNALS: tuple[int, ...] = (_SIGTERM, _signal.SIGINT, _signal.SIGHUP)
# Python ignores these for itself, and an ignored signal stays ignored across exec: a command gets them
# back at their default, as from a shell or subprocess (restore_signals), so that `yes | head` ends.
_PYTHON_IGNORED_SIGNALS: tuple[int, ...] = (_signal.SIGPIPE, _signal.SIGXFSZ)

_stop_requested = False


def main(args: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if args is None else args)
    if raw == ["--launcher"]:
        return serve()
    if "--" not in raw:
        _say(USAGE)
        return EXIT_USAGE
    split = raw.index("--")  # everything after the first "--" is the command, untouched
    options, command = _options(raw[:split]), raw[split + 1 :]
    if options is None:
        _say(USAGE)
        return EXIT_USAGE
    exit_file, memory_mb = options
    if not command:
        _say("no command to run")
        _record(exit_file, EXIT_USAGE)
        return EXIT_USAGE
    _keep_running_on_stop_signals()
    return _supervise(exit_file, memory_mb, command, posix.environ)


def _options(words: list[str]) -> tuple[str, int | None] | None:
    values = dict(zip(words[::2], words[1::2], strict=False))
    if len(words) % 2 or not set(values) <= {"--exit-file", "--memory-mb"} or "--exit-file" not in values:
        return None
    try:
        memory_mb = int(values["--memory-mb"]) if "--memory-mb" in values else None
    except ValueError:
        return None
    return values["--exit-file"], memory_mb


def _supervise(exit_file: str, memory_mb: int | None, command: list[str], env: Any) -> int:
    """Run the command under the limit, wait for it and record its exit code (stop signals already handled)."""
    if memory_mb is not None:
        _limit_memory(memory_mb)
    code = _run(command, env)
    _record(exit_file, code)
    return code


def _keep_running_on_stop_signals() -> None:
    """Survive SIGTERM/SIGINT/SIGHUP so the exit code of the child still gets recorded.

    A stop is sent to the whole process group, so the child receives it directly; the runner only has to
    outlive it. A Python handler (not SIG_IGN) is used on purpose: handled signals go back to their
    default in the child at exec, whereas an ignored SIGTERM would be inherited and make the job unstoppable.
    """

    def note_stop(signum: int, frame: object) -> None:
        global _stop_requested
        _stop_requested = True

    for signum in _STOP_SIGNALS:
        _signal.signal(signum, note_stop)


def _limit_memory(memory_mb: int) -> None:
    """Cap the address space (RLIMIT_AS) of the runner, and so of the child, which inherits it.

    Why AS: it is the one memory rlimit Linux enforces for every kind of allocation (heap, anonymous and
    shared mmap, thread stacks). RLIMIT_RSS is not enforced at all, and RLIMIT_DATA misses shared
    mappings. An allocation past the cap fails cleanly (Python raises MemoryError) instead of the kernel's
    OOM killer picking a victim. The price: AS counts reserved, not used, memory, so runtimes that reserve
    large ranges up front (CUDA, the JVM, Go) need a generous limit or none. It caps each process, not
    the sum over the tree; a cgroup would, but needs privileges a user's server does not have.
    """
    import resource  # only here: most jobs without a limit need not load it

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (_address_space_limit(memory_mb, hard), hard))
    except (ValueError, OSError) as exc:
        _say(f"could not apply the memory limit of {memory_mb} MB: {exc}")


def _address_space_limit(memory_mb: int, hard: int) -> int:
    """The RLIMIT_AS soft limit for ``memory_mb``: never above the hard limit (-1: none)."""
    limit = memory_mb * 1024 * 1024
    return limit if hard < 0 else min(limit, hard)


def _run(command: list[str], env: Any) -> int:
    # A stop sent to the group while the command is being spawned would reach the runner but not the
    # command, whose process does not exist yet: the stop signals wait (blocked) until it does.
    _signal.pthread_sigmask(_signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        if _stop_requested or _signal.sigpending() & set(_STOP_SIGNALS):
            # Stopped before it started: behave as if the child had received the signal.
            _say("stopped before the command started")
            return 128 + _SIGTERM
        try:
            # Same process group (no new session): a signal to the group reaches the child and its children.
            # stdout and stderr are inherited, so everything lands in the job's log; stdin is /dev/null. The
            # child starts with no signal blocked, whatever the runner blocks.
            pid = posix.posix_spawnp(
                command[0],
                command,
                env,
                file_actions=[(posix.POSIX_SPAWN_OPEN, 0, _DEVNULL, posix.O_RDONLY, 0)],
                setsigmask=(),
                setsigdef=_PYTHON_IGNORED_SIGNALS,
            )
        except FileNotFoundError:
            _say(f"cannot run {command[0]!r}: no such file or directory")
            return EXIT_NOT_FOUND
        except PermissionError:
            _say(f"cannot run {command[0]!r}: permission denied")
            return EXIT_CANNOT_EXECUTE
        except (OSError, ValueError, MemoryError) as exc:
            _say(f"cannot run {command[0]!r}: {exc}")
            return EXIT_CANNOT_EXECUTE
        # A stop that came while it was being spawned may have come before the child existed: pass it on.
        # (Had it come after, the child got it too; a second one, microseconds into its life, before it
        # can have set up a handler, ends it just the same.)
        for signum in _signal.sigpending() & set(_STOP_SIGNALS):
            posix.kill(pid, signum)  # not reaped yet, so the pid is still the child's
    finally:
        _signal.pthread_sigmask(_signal.SIG_UNBLOCK, _STOP_SIGNALS)  # what was held back is noted now
    _, status = posix.waitpid(pid, 0)  # a stop signal interrupts the wait; Python retries it after the handler
    code = posix.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _record(exit_file: str, code: int) -> None:
    """Write the exit file atomically: a reader sees no file or the whole file, even across a power cut."""
    fd, temporary, folder = _write_exit_file(exit_file, code)
    try:
        posix.fsync(fd)
    finally:
        posix.close(fd)
    posix.replace(temporary, exit_file)
    _sync_folder(folder)  # make the rename itself durable


def _write_exit_file(exit_file: str, code: int) -> tuple[int, str, str]:
    """The exit file's content written under a temporary name beside it: its open descriptor, the
    temporary name and the folder."""
    folder, _, name = exit_file.rpartition("/")
    folder = folder or ("/" if exit_file.startswith("/") else ".")
    _make_folders(folder)
    temporary = f"{folder}/.{name}.{posix.getpid()}.tmp"
    fd = posix.open(temporary, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_NOFOLLOW, 0o600)
    try:
        posix.write(fd, f"{code}\n".encode())
    except BaseException:
        posix.close(fd)
        raise
    return fd, temporary, folder


def _sync_folder(folder: str) -> None:
    try:
        directory = posix.open(folder, posix.O_RDONLY)
    except OSError:
        return
    try:
        posix.fsync(directory)
    except OSError:
        pass
    finally:
        posix.close(directory)


def _make_folders(folder: str) -> None:
    """``os.makedirs(folder, exist_ok=True)`` without importing ``os``."""
    try:
        posix.mkdir(folder, 0o777)
    except FileExistsError:
        return
    except FileNotFoundError:
        parent = folder.rpartition("/")[0]
        if not parent or parent == folder:
            raise
        _make_folders(parent)
        try:  # noqa: SIM105 - contextlib is one more module for every job to load
            posix.mkdir(folder, 0o777)
        except FileExistsError:
            pass


def _say(message: str) -> None:
    print(f"openarts: {message}", file=sys.stderr, flush=True)


# --- the launcher ---------------------------------------------------------------------------------------


def serve() -> int:
    """The launcher's loop: start each command asked for on stdin, record and report each exit.

    At EOF (the server is gone) it reads no more requests but stays until the commands it started have
    ended and their exit codes are recorded.
    """
    try:  # a pidfd per command tells the loop when it exits (Linux 5.3); without it, say so and leave
        posix.close(posix.pidfd_open(posix.getpid()))
    except (AttributeError, OSError):
        _send("unsupported\n")
        return EXIT_CANNOT_EXECUTE
    records = _Records()
    try:
        _serve(records, _Server())
    finally:
        records.close()  # every record durable before the launcher goes
    return 0


def _serve(records: _Records, server: _Server) -> None:
    import json  # once per launcher, never per job
    import select

    poller = select.poll()
    poller.register(0, select.POLLIN)
    children: dict[int, tuple[int, str]] = {}  # pidfd -> (pid, exit file) of each command not yet reaped
    pending = b""
    accepting = True  # until EOF on stdin
    server.send("ready\n")
    while accepting or children:
        for fd, _events in poller.poll():
            if fd != 0:
                pid, exit_file = children.pop(fd)
                poller.unregister(fd)
                posix.close(fd)
                try:  # noqa: SIM105 - contextlib is one more module to load
                    records.record(exit_file, _exit_code_of(pid))
                except OSError:
                    pass  # no record (a full disk?): the server finds the command gone without one, and says so
                server.send(f"exited {pid}\n")
                posix.waitpid(pid, 0)  # reaped only once recorded: until then it is a zombie, not gone
                continue
            data = posix.read(0, 1 << 16)
            if not data:  # the server let us go, or is gone: what runs carries on, its exits still recorded
                poller.unregister(0)
                accepting = False
                continue
            pending += data
            *lines, pending = pending.split(b"\n")
            for line in lines:
                try:
                    request = json.loads(line)
                    pid, ticks, pidfd = _spawn(request)
                except Exception as exc:  # nothing was started: say why and serve the next request
                    server.send(f"failed {json.dumps(str(exc))}\n")
                    continue
                children[pidfd] = (pid, str(request["exit"]))
                poller.register(pidfd, select.POLLIN)
                server.send(f"started {pid} {ticks}\n")


class _Records:
    """The launcher's exit files: each in place at once, made durable by a thread of its own.

    The loop that starts and reaps commands must never wait for the disk: the next command of a search is
    asked for the moment the server hears of an exit. A record is renamed into place (complete: a reader
    sees no file or all of it) and the fsyncs of the file and its folder follow on the thread; a power
    cut in that window may leave an empty file, read as no record (the job is lost, not misreported).
    ``close`` waits until every record handed over is durable.
    """

    def __init__(self) -> None:
        import _queue  # once per launcher; C modules both
        import _thread

        self._queue: Any = _queue.SimpleQueue()
        self._idle = _thread.allocate_lock()
        self._idle.acquire()
        _thread.start_new_thread(self._sync, ())

    def record(self, exit_file: str, code: int) -> None:
        fd, temporary, folder = _write_exit_file(exit_file, code)
        try:
            posix.replace(temporary, exit_file)
        except BaseException:
            posix.close(fd)
            raise
        self._queue.put((fd, folder))

    def close(self) -> None:
        self._queue.put(None)
        self._idle.acquire()

    def _sync(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                fd, folder = item
                try:
                    posix.fsync(fd)
                except OSError:
                    pass  # the record is in place; only its durability is lost
                finally:
                    posix.close(fd)
                _sync_folder(folder)
        finally:
            self._idle.release()


def _exit_code_of(pid: int) -> int:
    """The exit code of an ended child, as a shell gives it (128 + the signal that ended it), left unreaped.

    Left as a zombie until its exit file is written, the command is never seen gone without its record.
    """
    ended = posix.waitid(posix.P_PID, pid, posix.WEXITED | posix.WNOWAIT)
    assert ended is not None  # WNOHANG is not asked for: waitid waits for the child, which has exited
    if ended.si_code == posix.CLD_EXITED:
        return int(ended.si_status)
    return 128 + int(ended.si_status)  # CLD_KILLED or CLD_DUMPED: si_status is the signal


class _Server:
    """The launcher's line to the server, which may be gone at any moment: then nothing more is sent."""

    connected = True

    def send(self, line: str) -> None:
        if not self.connected:
            return
        try:
            _send(line)
        except BrokenPipeError:
            self.connected = False


def _spawn(request: dict[str, Any]) -> tuple[int, int, int]:
    """Start the request's command as a runner would; its pid, start time in clock ticks and a pidfd.

    What a runner does for its command, done here around one ``posix_spawn`` (no copy of this interpreter
    is made): the command leads its own session and process group (so a stop reaches its whole tree and
    no signal meant for the launcher reaches it), stdin is /dev/null, stdout and stderr go to the log, it
    starts in the job's folder with the job's environment, PATH lookup included, under the memory limit,
    with no signal blocked and the ones Python ignores back to their default. Only this loop starts
    processes or reads PATH (the launcher's other thread fsyncs records by absolute paths), so changing
    the launcher's own folder, PATH and limit for the duration of the call is safe.
    Raises, with nothing left running, when the command cannot be started: the server then starts a
    runner as usual, which reports the failure the usual way (exit code 127 or 126 and a message).
    """
    import resource

    exit_file = str(request["exit"])
    argv = [str(arg) for arg in request["argv"]]
    env = {str(k): str(v) for k, v in dict(request["env"]).items()}
    memory_mb = request.get("memory_mb")
    log = posix.open(str(request["log"]), posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT, 0o600)
    own_limit = resource.getrlimit(resource.RLIMIT_AS)
    own_path = posix.environ.get(b"PATH")
    try:
        posix.chdir(str(request["cwd"]))
        if "PATH" in env:  # posix_spawnp looks the command up on the caller's PATH: make it the job's
            posix.putenv("PATH", env["PATH"])
        else:
            posix.unsetenv("PATH")
        if memory_mb is not None:
            resource.setrlimit(resource.RLIMIT_AS, (_address_space_limit(int(memory_mb), own_limit[1]), own_limit[1]))
        pid = posix.posix_spawnp(
            argv[0],
            argv,
            env,
            file_actions=[
                (posix.POSIX_SPAWN_OPEN, 0, _DEVNULL, posix.O_RDONLY, 0),
                (posix.POSIX_SPAWN_DUP2, log, 1),
                (posix.POSIX_SPAWN_DUP2, log, 2),
            ],
            setsid=True,
            setsigmask=(),
            setsigdef=_PYTHON_IGNORED_SIGNALS,
        )
    finally:
        resource.setrlimit(resource.RLIMIT_AS, own_limit)
        if own_path is None:
            posix.unsetenv("PATH")
        else:
            posix.putenv("PATH", own_path)
        posix.chdir("/")
        posix.close(log)
    try:
        pidfd = posix.pidfd_open(pid)  # before any waitpid: the pid cannot be reused until we reap it
        ticks = _start_ticks(pid)
    except BaseException:  # cannot watch it (out of descriptors?): undo it rather than lose track of it
        posix.killpg(pid, _SIGKILL)
        posix.waitpid(pid, 0)
        raise
    try:
        fd = posix.open(exit_file + PID_FILE_SUFFIX, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC, 0o600)
        try:
            posix.write(fd, f"{pid} {ticks}\n".encode())
        finally:
            posix.close(fd)
    except OSError:
        pass  # only a crash before the answer needs it; the command runs either way
    return pid, ticks, pidfd


def _start_ticks(pid: int) -> int:
    """When the process started, in clock ticks since boot (field 22 of /proc/PID/stat)."""
    fd = posix.open(f"/proc/{pid}/stat", posix.O_RDONLY)
    try:
        stat = posix.read(fd, 4096)
    finally:
        posix.close(fd)
    return int(stat.rpartition(b")")[2].split()[19])


def _send(line: str) -> None:
    data = line.encode()
    while data:
        data = data[posix.write(1, data) :]


if __name__ == "__main__":
    sys.exit(main())
