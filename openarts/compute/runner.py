"""The runner: the small parent process of one job's command.

    python -I -S .../openarts/compute/runner.py --exit-file PATH [--memory-mb N] -- ARGV...

It exists so that a job's result outlives the server. The server starts the runner in a new session and
process group; the runner starts the user's argv as its child in that same group, waits for it, and
records the exit code in ``--exit-file`` atomically. A server killed with ``kill -9`` loses nothing: after
a restart it finds the runner by pid and start time, or reads the exit file if the job has ended.

It runs as a plain file under ``-I -S`` (isolated, no site packages): the job's folder is not on
``sys.path``, PYTHON* variables are ignored, so a user's ``resource.py`` cannot shadow what the runner
imports, and the interpreter starts in a few milliseconds. That is also why it imports nothing from
OpenArts and only the cheapest modules of the standard library (no argparse, subprocess or tempfile):
every job pays for this start-up.

The exit file holds the exit code as plain text (``"0\\n"``); its modification time is when the job ended.
"""

from __future__ import annotations

import os
import resource
import signal
import sys

EXIT_NOT_FOUND = 127  # the shell's conventions, which users and tools already know
EXIT_CANNOT_EXECUTE = 126
EXIT_USAGE = 2
USAGE = "usage: runner.py --exit-file PATH [--memory-mb N] -- ARGV..."

_stop_requested = False


def main(args: list[str] | None = None) -> int:
    raw = list(sys.argv[1:] if args is None else args)
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
    if memory_mb is not None:
        _limit_memory(memory_mb)
    code = _run(command)
    _record(exit_file, code)
    return code


def _options(words: list[str]) -> tuple[str, int | None] | None:
    values = dict(zip(words[::2], words[1::2], strict=False))
    if len(words) % 2 or not set(values) <= {"--exit-file", "--memory-mb"} or "--exit-file" not in values:
        return None
    try:
        memory_mb = int(values["--memory-mb"]) if "--memory-mb" in values else None
    except ValueError:
        return None
    return values["--exit-file"], memory_mb


def _keep_running_on_stop_signals() -> None:
    """Survive SIGTERM/SIGINT/SIGHUP so the exit code of the child still gets recorded.

    A stop is sent to the whole process group, so the child receives it directly; the runner only has to
    outlive it. A Python handler (not SIG_IGN) is used on purpose: handled signals go back to their
    default in the child at exec, whereas an ignored SIGTERM would be inherited and make the job unstoppable.
    """

    def note_stop(signum: int, frame: object) -> None:
        global _stop_requested
        _stop_requested = True

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, note_stop)


def _limit_memory(memory_mb: int) -> None:
    """Cap the address space (RLIMIT_AS) of the runner, and so of the child, which inherits it.

    Why AS: it is the one memory rlimit Linux enforces for every kind of allocation (heap, anonymous and
    shared mmap, thread stacks). RLIMIT_RSS is not enforced at all, and RLIMIT_DATA misses shared
    mappings. An allocation past the cap fails cleanly (Python raises MemoryError) instead of the kernel's
    OOM killer picking a victim. The price: AS counts reserved, not used, memory, so runtimes that reserve
    large ranges up front (CUDA, the JVM, Go) need a generous limit or none. It caps each process, not
    the sum over the tree; a cgroup would, but needs privileges a user's server does not have.
    """
    limit = memory_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ValueError, OSError) as exc:
        _say(f"could not apply the memory limit of {memory_mb} MB: {exc}")


def _run(command: list[str]) -> int:
    if _stop_requested:  # stopped before it started: behave as if the child had received the signal
        _say("stopped before the command started")
        return 128 + signal.SIGTERM
    try:
        # Same process group (no new session): a signal to the group reaches the child and its children.
        # stdout and stderr are inherited, so everything lands in the job's log; stdin is /dev/null.
        pid = os.posix_spawnp(
            command[0],
            command,
            os.environ,
            file_actions=[(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0)],
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
    _, status = os.waitpid(pid, 0)  # a stop signal interrupts the wait; Python retries it after the handler
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def _record(exit_file: str, code: int) -> None:
    """Write the exit file atomically: a reader sees no file or the whole file, even across a power cut."""
    folder = os.path.dirname(exit_file) or "."
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(exit_file)}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, f"{code}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, exit_file)
    try:  # make the rename itself durable
        directory = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def _say(message: str) -> None:
    print(f"openarts: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
