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
one long-lived runner that reads requests on stdin (one JSON object a line) and forks a runner for
each: a fork of a small interpreter costs a millisecond, a fresh interpreter tens. The forked runner is
the same runner as above in every way that matters: its own session and process group, the stop
signals handled, the memory limit, the command's exit code recorded atomically in its exit file. It does
not depend on the launcher once forked, and the launcher does not depend on the server: when the server
goes (its pipe closes) the launcher exits and the runners it forked carry on. Since a forked runner
carries the launcher's command line, not its exit file, the launcher writes ``EXIT_FILE.pid`` (its pid
and start time in clock ticks) for the server to find it again after a crash. It answers each request
with ``started PID TICKS`` (or ``failed MESSAGE``) once the runner leads its own session, and reports
``exited PID`` when it has reaped one.

The exit file holds the exit code as plain text (``"0\\n"``); its modification time is when the job ended.
"""

from __future__ import annotations

import _signal  # type: ignore[import-not-found]  # the C half of signal, without enum (no stub)
import posix
import sys

TYPE_CHECKING = False  # typing itself is not imported at run time: it would cost every job milliseconds
if TYPE_CHECKING:
    from typing import Any, NoReturn

EXIT_NOT_FOUND = 127  # the shell's conventions, which users and tools already know
EXIT_CANNOT_EXECUTE = 126
EXIT_USAGE = 2
USAGE = "usage: runner.py --exit-file PATH [--memory-mb N] -- ARGV...  |  runner.py --launcher"
PID_FILE_SUFFIX = ".pid"
_DEVNULL = "/dev/null"
_SIGTERM: int = _signal.SIGTERM
_SIGKILL: int = _signal.SIGKILL
_STOP_SIGNALS: tuple[int, ...] = (_SIGTERM, _signal.SIGINT, _signal.SIGHUP)

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

    limit = memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as exc:
        _say(f"could not apply the memory limit of {memory_mb} MB: {exc}")


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
    folder, _, name = exit_file.rpartition("/")
    folder = folder or ("/" if exit_file.startswith("/") else ".")
    _make_folders(folder)
    temporary = f"{folder}/.{name}.{posix.getpid()}.tmp"
    fd = posix.open(temporary, posix.O_WRONLY | posix.O_CREAT | posix.O_TRUNC | posix.O_NOFOLLOW, 0o600)
    try:
        posix.write(fd, f"{code}\n".encode())
        posix.fsync(fd)
    finally:
        posix.close(fd)
    posix.replace(temporary, exit_file)
    try:  # make the rename itself durable
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
    """The launcher's loop: fork a runner per request on stdin, report each one reaped; end at EOF."""
    import json  # once per launcher, never per job
    import resource  # noqa: F401 - loaded here once, rather than by every forked runner with a memory limit
    import select

    try:  # a pidfd per runner tells the loop when it exits (Linux 5.3); without it, say so and leave
        posix.close(posix.pidfd_open(posix.getpid()))
    except (AttributeError, OSError):
        _send("unsupported\n")
        return EXIT_CANNOT_EXECUTE
    poller = select.poll()
    poller.register(0, select.POLLIN)
    children: dict[int, int] = {}  # pidfd -> pid of each forked runner not yet reaped
    pending = b""
    try:
        _send("ready\n")
        while True:
            for fd, _events in poller.poll():
                if fd != 0:
                    pid = children.pop(fd)
                    poller.unregister(fd)
                    posix.close(fd)
                    posix.waitpid(pid, 0)
                    _send(f"exited {pid}\n")
                    continue
                data = posix.read(0, 1 << 16)
                if not data:
                    return 0  # the server is gone; the runners carry on without us
                pending += data
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    try:
                        pid, ticks, pidfd = _fork_runner(json.loads(line))
                    except Exception as exc:  # nothing was started: say why and serve the next request
                        _send(f"failed {json.dumps(str(exc))}\n")
                        continue
                    children[pidfd] = pid
                    poller.register(pidfd, select.POLLIN)
                    _send(f"started {pid} {ticks}\n")
    except BrokenPipeError:
        return 0  # the server went away while we answered


def _fork_runner(request: dict[str, Any]) -> tuple[int, int, int]:
    """Fork a runner for ``request``; its pid, its start time in clock ticks, and a pidfd to watch it by.

    Returns once the runner leads its own session and handles the stop signals, so that a stop the
    server sends as soon as it hears the pid reaches the whole group and is noted, never lost. Raises
    only if no runner is left running.
    """
    exit_file = str(request["exit"])
    ready_read, ready_write = posix.pipe()
    try:
        pid = posix.fork()
    except BaseException:
        posix.close(ready_read)
        posix.close(ready_write)
        raise
    if pid == 0:
        posix.close(ready_read)
        _runner_child(request, ready_write)
    posix.close(ready_write)
    try:
        posix.read(ready_read, 1)  # EOF: the child has set itself up (or died trying)
    finally:
        posix.close(ready_read)
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
        pass  # only a hint for finding the runner after a crash; the pid reaches the server anyway
    return pid, ticks, pidfd


def _runner_child(request: dict[str, Any], ready: int) -> NoReturn:
    """The forked runner: becomes what a freshly started runner would be, then supervises the command."""
    code = EXIT_CANNOT_EXECUTE
    try:
        _keep_running_on_stop_signals()  # before anyone can know our pid
        posix.setsid()  # our own session and process group, as start_new_session gives a started runner
        posix.close(ready)
        log = posix.open(str(request["log"]), posix.O_WRONLY | posix.O_APPEND | posix.O_CREAT, 0o600)
        null = posix.open(_DEVNULL, posix.O_RDONLY)
        posix.dup2(null, 0)  # also lets go of the launcher's pipes, which sat on 0 and 1
        posix.dup2(log, 1)
        posix.dup2(log, 2)
        posix.closerange(3, 1 << 16)  # the launcher's pidfds and the originals of the two above
        posix.chdir(str(request["cwd"]))
        env = {str(k): str(v) for k, v in dict(request["env"]).items()}
        # posix_spawnp looks the command up on this process's PATH: make it the job's, as for a runner
        # started with the job's environment.
        if "PATH" in env:
            posix.putenv("PATH", env["PATH"])
        else:
            posix.unsetenv("PATH")
        memory_mb = request.get("memory_mb")
        command = [str(arg) for arg in request["argv"]]
        code = _supervise(str(request["exit"]), int(memory_mb) if memory_mb is not None else None, command, env)
    except BaseException as exc:  # a forked copy must never fall back into the launcher's loop
        try:
            _say(f"could not start the command: {exc}")
            _record(str(request["exit"]), code)
        except BaseException:  # noqa: S110 - nowhere left to report it; the exit code says enough
            pass
    finally:
        posix._exit(code)


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
