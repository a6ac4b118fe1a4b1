"""The local executor with real processes: output, exit codes, argv safety, environment, stop, restarts.

Every test runs twice: with the runner started as a process of its own, and with the command started by
the executor's launcher (``LaunchSpec.via_launcher``, as search trials are), which is then its runner. The
two behave the same, but for what follows from the launcher's command having no runner of its own: the
handle is the command itself, and a SIGKILL of its group ends it with 137 recorded instead of a lost
outcome (``killed_outcome``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from openarts.compute.executor import LaunchSpec, Outcome, ProcessHandle
from openarts.compute.local import LocalExecutor

PY = sys.executable
VIA_LAUNCHER = False  # set by the fixture below for each run of a test


@pytest.fixture(autouse=True, params=[False, True], ids=["started", "launched"])
def via_launcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[bool]:
    """Runs the test with runners started one by one, then with commands started by a launcher; closes them."""
    monkeypatch.setattr(sys.modules[__name__], "VIA_LAUNCHER", request.param)
    executors: list[LocalExecutor] = []
    original = LocalExecutor.__init__

    def tracked(self: LocalExecutor, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        executors.append(self)

    monkeypatch.setattr(LocalExecutor, "__init__", tracked)
    yield request.param
    for executor in executors:
        executor.close()


def spec_for(tmp_path: Path, argv: list[str], **extra: Any) -> LaunchSpec:
    return LaunchSpec(
        argv=argv,
        cwd=tmp_path / "work",
        env=extra.pop("env", {}),
        log_path=tmp_path / "logs" / "job.log",
        exit_path=tmp_path / "state" / "exit",
        via_launcher=VIA_LAUNCHER,
        **extra,
    )


def python(code: str, *args: str) -> list[str]:
    return [PY, "-c", code, *args]


def wait_for(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout}s")


def finish(executor: LocalExecutor, handle: ProcessHandle, spec: LaunchSpec, timeout: float = 15.0) -> Outcome:
    outcome: Outcome = wait_for(lambda: executor.outcome(handle, spec.exit_path), timeout)
    return outcome


def log_of(spec: LaunchSpec) -> str:
    return spec.log_path.read_text()


def test_output_of_stdout_and_stderr_lands_in_the_log(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import sys; print('to stdout'); print('to stderr', file=sys.stderr)"))
    handle = executor.launch(spec)
    outcome = finish(executor, handle, spec)
    assert (outcome.exit_code, outcome.lost) == (0, False)
    assert outcome.ended_at is not None and outcome.ended_at <= time.time() + 1
    assert "to stdout" in log_of(spec) and "to stderr" in log_of(spec)
    assert not executor.is_alive(handle)


def test_the_log_is_appended_not_replaced(tmp_path: Path) -> None:
    executor = LocalExecutor()
    first = spec_for(tmp_path, python("print('first run')"))
    finish(executor, executor.launch(first), first)
    second = spec_for(tmp_path, python("print('second run')"))
    assert finish(executor, executor.launch(second), second).exit_code == 0  # the old exit file is not read
    assert log_of(second).splitlines() == ["first run", "second run"]


def test_exit_code_is_recorded(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("raise SystemExit(3)"))
    assert finish(executor, executor.launch(spec), spec) == Outcome(3, False, spec.exit_path.stat().st_mtime)
    assert spec.exit_path.read_text().strip() == "3"


def test_missing_executable_is_127_with_a_message(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, [str(tmp_path / "no-such-program"), "arg"])
    outcome = finish(executor, executor.launch(spec), spec)
    assert (outcome.exit_code, outcome.lost) == (127, False)
    assert "no-such-program" in log_of(spec) and "no such file" in log_of(spec)


def test_non_executable_file_is_126(tmp_path: Path) -> None:
    executor = LocalExecutor()
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")  # not chmod +x
    spec = spec_for(tmp_path, [str(script)])
    assert finish(executor, executor.launch(spec), spec).exit_code == 126
    assert "permission denied" in log_of(spec)


def test_hostile_parameters_arrive_as_literal_argv_elements(tmp_path: Path) -> None:
    executor = LocalExecutor()
    payloads = [
        f"; touch {tmp_path}/pwn",
        f"$(touch {tmp_path}/pwn2)",
        f"`touch {tmp_path}/pwn3`",
        'it\'s "quoted"',
        "line one\nline two",
        "--x",
        "--",
        "-c",
        "--exit-file=/tmp/elsewhere",
    ]
    spec = spec_for(tmp_path, python("import json, sys; print(json.dumps(sys.argv[1:]))", *payloads))
    assert finish(executor, executor.launch(spec), spec).exit_code == 0
    assert json.loads(log_of(spec).strip()) == payloads
    assert not any(tmp_path.glob("pwn*"))
    assert spec.exit_path.read_text().strip() == "0"


def test_server_environment_does_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENARTS_SECRET_CANARY", "s3cret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "also-secret")
    executor = LocalExecutor()
    spec = spec_for(
        tmp_path,
        python("import json, os; print(json.dumps(dict(os.environ)))"),
        env={"MY_VAR": "a value; $(not expanded)", "PATH": os.environ.get("PATH", "")},
        gpus=[],
    )
    assert finish(executor, executor.launch(spec), spec).exit_code == 0
    env = json.loads(log_of(spec))
    assert "OPENARTS_SECRET_CANARY" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert not any("s3cret" in value for value in env.values())
    assert env["MY_VAR"] == "a value; $(not expanded)"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert Path(env["TMPDIR"]).is_dir() and Path(env["TMPDIR"]).is_relative_to(spec.cwd)


def test_gpus_pin_cuda_visible_devices(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(
        tmp_path,
        python("import os; print(os.environ['CUDA_VISIBLE_DEVICES'])"),
        env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"},  # the allocation wins over the job's own value
        gpus=[1, 3],
    )
    assert finish(executor, executor.launch(spec), spec).exit_code == 0
    assert log_of(spec).strip() == "1,3"


def test_invalid_specs_are_refused(tmp_path: Path) -> None:
    executor = LocalExecutor()
    with pytest.raises(ValueError):
        executor.launch(spec_for(tmp_path, []))
    with pytest.raises(ValueError):
        executor.launch(spec_for(tmp_path, ["true"], env={"A=B": "x"}))
    with pytest.raises(ValueError):
        executor.launch(spec_for(tmp_path, ["true"], memory_limit_mb=0))


def _runners() -> int:
    """Processes between the handle and the command: the runner, unless the launcher started the command."""
    return 0 if VIA_LAUNCHER else 1


def killed_outcome(outcome: Outcome) -> Outcome:
    """What a SIGKILL of the whole group leaves: nothing recorded, unless the launcher recorded the kill."""
    return Outcome(128 + signal.SIGKILL, False, outcome.ended_at) if VIA_LAUNCHER else Outcome(None, True)


def _tree(handle: ProcessHandle) -> list[psutil.Process]:
    root = psutil.Process(handle.pid)
    return [root, *root.children(recursive=True)]


def _gone(processes: list[psutil.Process]) -> bool:
    def dead(process: psutil.Process) -> bool:
        try:
            return bool(process.status() == psutil.STATUS_ZOMBIE)
        except psutil.NoSuchProcess:
            return True

    return all(dead(process) for process in processes)


GRANDCHILD = "import subprocess, time; subprocess.Popen(['sleep', '60']); print('ready', flush=True); time.sleep(60)"


def test_terminate_stops_the_whole_tree(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(GRANDCHILD))
    handle = executor.launch(spec)
    wait_for(lambda: "ready" in log_of(spec) and len(_tree(handle)) >= _runners() + 2)  # [runner,] python, sleep
    tree = _tree(handle)
    executor.terminate(handle)
    outcome = finish(executor, handle, spec, timeout=10)
    assert (outcome.exit_code, outcome.lost) == (128 + signal.SIGTERM, False)
    wait_for(lambda: _gone(tree), timeout=5)


def test_a_child_that_handles_sigterm_keeps_its_own_exit_code(tmp_path: Path) -> None:
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(code))
    handle = executor.launch(spec)
    wait_for(lambda: "ready" in log_of(spec))
    executor.terminate(handle)
    assert finish(executor, handle, spec, timeout=10).exit_code == 7


def test_kill_stops_the_whole_tree_and_the_outcome_is_lost(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(GRANDCHILD))
    handle = executor.launch(spec)
    wait_for(lambda: "ready" in log_of(spec) and len(_tree(handle)) >= _runners() + 2)
    tree = _tree(handle)
    executor.kill(handle)
    outcome = finish(executor, handle, spec, timeout=10)
    assert outcome == killed_outcome(outcome)
    wait_for(lambda: _gone(tree), timeout=5)


def test_readopted_after_a_restart(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, python("import time; time.sleep(1.5); print('done')"))
    handle = LocalExecutor().launch(spec)
    restarted = LocalExecutor()  # knows nothing but the handle, as after a restart
    assert restarted.is_alive(handle)
    assert restarted.outcome(handle, spec.exit_path) is None
    assert restarted.usage(handle).memory_mb > 0
    outcome = finish(restarted, handle, spec)
    assert (outcome.exit_code, outcome.lost) == (0, False)
    assert not restarted.is_alive(handle)
    assert "done" in log_of(spec)


def test_survives_the_death_of_the_server(tmp_path: Path) -> None:
    """A server (here a stand-in Python process using the executor) is SIGKILLed; its job runs on."""
    spec = spec_for(tmp_path, python("import time; time.sleep(1.5); print('survived')"))
    server_code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from openarts.compute.executor import LaunchSpec\n"
        "from openarts.compute.local import LocalExecutor\n"
        f"spec = LaunchSpec(argv={spec.argv!r}, cwd=Path({str(spec.cwd)!r}), env={{}},\n"
        f"    log_path=Path({str(spec.log_path)!r}), exit_path=Path({str(spec.exit_path)!r}),\n"
        f"    via_launcher={spec.via_launcher!r})\n"
        "handle = LocalExecutor().launch(spec)\n"
        "print(json.dumps([handle.pid, handle.start_time]), flush=True)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([PY, "-c", server_code], stdout=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        try:
            pid, start_time = json.loads(server.stdout.readline())
        finally:
            server.send_signal(signal.SIGKILL)  # kill -9 of the server
    handle = ProcessHandle(pid, start_time)
    executor = LocalExecutor()
    assert executor.is_alive(handle)
    assert executor.find(spec.exit_path) == handle  # and found again by its exit file, as after a crash
    assert finish(executor, handle, spec).exit_code == 0
    assert "survived" in log_of(spec)


def test_find_adopts_a_runner_by_its_exit_file(tmp_path: Path) -> None:
    spec = spec_for(tmp_path, python("import time; time.sleep(30)"))
    executor = LocalExecutor()
    handle = executor.launch(spec)
    try:
        assert LocalExecutor().find(spec.exit_path) == handle
        assert LocalExecutor().find(tmp_path / "other-exit") is None
    finally:
        executor.kill(handle)


def test_lost_when_the_group_is_killed(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import time; print('ready', flush=True); time.sleep(60)"))
    handle = executor.launch(spec)
    wait_for(lambda: "ready" in log_of(spec))
    os.killpg(handle.pid, signal.SIGKILL)
    outcome = finish(executor, handle, spec)
    assert outcome == killed_outcome(outcome)


def test_orphans_of_a_vanished_runner_are_stopped(tmp_path: Path) -> None:
    """Only the runner is SIGKILLed: the job is lost, and what is left of its group does not run on."""
    if VIA_LAUNCHER:
        pytest.skip("the launcher's command has no runner of its own to vanish (the launcher is its runner)")
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(GRANDCHILD))
    handle = executor.launch(spec)
    wait_for(lambda: "ready" in log_of(spec) and len(_tree(handle)) >= 3)
    tree = _tree(handle)
    os.kill(handle.pid, signal.SIGKILL)
    assert finish(executor, handle, spec) == Outcome(None, True)
    wait_for(lambda: _gone(tree[1:]), timeout=5)


def test_a_wrong_start_time_is_another_process(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import time; print('ready', flush=True); time.sleep(60)"))
    handle = executor.launch(spec)
    try:
        wait_for(lambda: "ready" in log_of(spec))
        stale = ProcessHandle(handle.pid, handle.start_time - 3600)  # same pid, an hour older: not ours
        assert not executor.is_alive(stale)
        executor.terminate(stale)
        executor.kill(stale)
        time.sleep(0.3)
        assert executor.is_alive(handle)  # nothing was signalled
        assert executor.outcome(handle, spec.exit_path) is None
    finally:
        executor.kill(handle)


def test_a_dead_pid_is_not_alive() -> None:
    executor = LocalExecutor()
    handle = ProcessHandle(pid=2**22 + 12345, start_time=time.time())  # above any pid_max default
    assert not executor.is_alive(handle)
    executor.terminate(handle)  # no error
    assert executor.usage(handle).memory_mb == 0


ALLOCATE = "b = bytearray(500 * 1024 * 1024); print('allocated', len(b))"


def test_memory_limit_stops_an_oversized_allocation(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(ALLOCATE), memory_limit_mb=200)
    outcome = finish(executor, executor.launch(spec), spec)
    assert outcome.exit_code not in (0, None)
    assert "MemoryError" in log_of(spec)


def test_without_a_limit_the_allocation_succeeds(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python(ALLOCATE))
    assert finish(executor, executor.launch(spec), spec).exit_code == 0
    assert "allocated" in log_of(spec)


def test_usage_of_a_running_job(tmp_path: Path) -> None:
    executor = LocalExecutor()
    code = "import time\nprint('ready', flush=True)\nend = time.time() + 30\nwhile time.time() < end: pass\n"
    spec = spec_for(tmp_path, python(code))
    handle = executor.launch(spec)
    try:
        wait_for(lambda: "ready" in log_of(spec))
        first = executor.usage(handle)
        assert first.memory_mb > 0
        time.sleep(0.5)
        second = executor.usage(handle)
        assert second.memory_mb > 0
        assert second.cpu_percent > 20  # a busy loop: close to one core
    finally:
        executor.kill(handle)
    wait_for(lambda: not executor.is_alive(handle))
    assert executor.usage(handle).memory_mb == 0


def test_no_zombies_are_left_behind(tmp_path: Path) -> None:
    executor = LocalExecutor()
    specs = [spec_for(tmp_path / str(i), python("pass")) for i in range(3)]
    handles = [executor.launch(spec) for spec in specs]
    for handle, spec in zip(handles, specs, strict=True):
        finish(executor, handle, spec)
    zombies = [child for child in psutil.Process().children() if child.pid in {h.pid for h in handles}]
    assert zombies == []
    wait_for(lambda: not any(_zombie(handle.pid) for handle in handles), timeout=5)  # the launcher reaps its own


def _zombie(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


def test_a_runner_leads_its_own_session_and_group(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import time; print('ready', flush=True); time.sleep(30)"))
    handle = executor.launch(spec)
    try:
        wait_for(lambda: "ready" in log_of(spec))
        command = _tree(handle)[_runners()]
        assert os.getsid(handle.pid) == os.getpgid(handle.pid) == handle.pid
        assert os.getpgid(command.pid) == handle.pid  # the command is in the runner's group (or leads it)
        assert os.getsid(handle.pid) != os.getsid(0)
    finally:
        executor.kill(handle)


def test_signals_python_ignores_are_back_at_their_default_for_the_command(tmp_path: Path) -> None:
    """The runner and the launcher are Python, which ignores SIGPIPE and SIGXFSZ; an ignored signal stays
    ignored across exec, and `producer | head` would then never end. The command gets them as a shell
    would give them."""
    executor = LocalExecutor()
    spec = spec_for(tmp_path, ["grep", "^SigIgn:", "/proc/self/status"])  # grep's own ignored signals
    assert finish(executor, executor.launch(spec), spec).exit_code == 0
    ignored = int(log_of(spec).split()[1], 16)
    for signum in (signal.SIGPIPE, signal.SIGXFSZ):
        assert not ignored & (1 << (signum - 1)), f"{signum.name} is ignored by the command"


def test_a_stop_sent_at_once_is_not_lost(tmp_path: Path) -> None:
    """Stopped the moment its pid is known: the runner notes it (the command never starts, or gets it)."""
    executor = LocalExecutor()
    for attempt in range(5):
        spec = spec_for(tmp_path / str(attempt), python("import time; time.sleep(30)"))
        handle = executor.launch(spec)
        executor.terminate(handle)
        outcome = finish(executor, handle, spec, timeout=10)
        if VIA_LAUNCHER:  # a started runner may still be loading when the signal comes: only launched ones promise
            assert outcome == Outcome(128 + signal.SIGTERM, False, outcome.ended_at)


def test_the_runner_imports_only_what_is_built_in(tmp_path: Path) -> None:
    """Every job pays for the runner's start: no os, enum (signal), typing or other module read from disk."""
    from openarts.compute.local import RUNNER_ARGV

    exit_path = tmp_path / "exit"
    done = subprocess.run(
        [RUNNER_ARGV[0], "-X", "importtime", *RUNNER_ARGV[1:], "--exit-file", str(exit_path), "--", "true"],
        capture_output=True,
        text=True,
        check=True,
    )
    imported = {line.split("|")[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "runner" in imported
    assert not imported & {"os", "signal", "enum", "typing", "resource", "json", "select", "subprocess"}
    assert exit_path.read_text() == "0\n"
