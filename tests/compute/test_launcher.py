"""The launcher of ``LocalExecutor`` (``LaunchSpec.via_launcher``): one long-lived process starts many short
commands and is the runner of each. How those commands behave is tested with every other runner in
``test_local.py``; here, what is particular to the launcher."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from openarts.compute import local
from openarts.compute.executor import LaunchSpec
from openarts.compute.local import LocalExecutor
from tests.compute.test_local import finish, log_of, python, wait_for


def spec_for(tmp_path: Path, argv: list[str], **extra: Any) -> LaunchSpec:
    return LaunchSpec(
        argv=argv,
        cwd=tmp_path / "work",
        env={},
        log_path=tmp_path / "logs" / "job.log",
        exit_path=tmp_path / "state" / "exit",
        via_launcher=True,
        **extra,
    )


def test_commands_are_started_by_one_launcher_that_reports_each_exit(tmp_path: Path) -> None:
    exits: list[float] = []
    executor = LocalExecutor(on_exit=lambda: exits.append(time.monotonic()))
    executor.warm_up()  # starts it in the background; the first launch waits until it is ready
    specs = [spec_for(tmp_path / str(i), python("print('hi')")) for i in range(3)]
    handles = [executor.launch(spec) for spec in specs]
    parents = {psutil.Process(handle.pid).ppid() for handle in handles if psutil.pid_exists(handle.pid)}
    for handle, spec in zip(handles, specs, strict=True):
        assert finish(executor, handle, spec).exit_code == 0
        assert spec.exit_path.with_name(spec.exit_path.name + ".pid").read_text().split()[0] == str(handle.pid)
    assert len(parents) <= 1 and os.getpid() not in parents
    if parents:
        assert "--launcher" in psutil.Process(parents.pop()).cmdline()
    wait_for(lambda: len(exits) >= 3)
    executor.close()


def test_without_a_launcher_runners_are_started_one_by_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def unsupported(self: object, request: object) -> tuple[int, int]:
        raise local._LauncherUnsupportedError("no pidfd here")

    monkeypatch.setattr(local._Launcher, "start", unsupported)
    executor = LocalExecutor()
    for attempt in range(2):
        spec = spec_for(tmp_path / str(attempt), python("print('still runs')"))
        handle = executor.launch(spec)
        assert psutil.Process(handle.pid).ppid() == os.getpid()  # a runner started by this process
        assert finish(executor, handle, spec).exit_code == 0
        assert "still runs" in log_of(spec)
    executor.close()


def test_a_launcher_lost_mid_request_is_answered_by_the_pid_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The launcher started the command but its answer never came: it is adopted, not started twice."""
    original = local._Launcher.start

    def answer_lost(self: local._Launcher, request: dict[str, object]) -> tuple[int, int]:
        original(self, request)
        raise OSError("the launcher did not answer")

    monkeypatch.setattr(local._Launcher, "start", answer_lost)
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import time; time.sleep(1); print('once')"))
    handle = executor.launch(spec)
    assert finish(executor, handle, spec).exit_code == 0
    assert log_of(spec) == "once\n"
    executor.close()


def test_closing_the_launcher_leaves_its_commands_running_and_their_exits_recorded(tmp_path: Path) -> None:
    executor = LocalExecutor()
    spec = spec_for(tmp_path, python("import time; time.sleep(1); print('carried on')"))
    handle = executor.launch(spec)
    launcher = psutil.Process(handle.pid).parent()
    assert launcher is not None
    executor.close()
    assert launcher.is_running() and not spec.exit_path.exists()  # it stays while its command runs
    launcher.wait(timeout=10)  # and goes once the command has ended and its exit code is recorded
    assert spec.exit_path.read_text() == "0\n"
    assert finish(LocalExecutor(), handle, spec).exit_code == 0
    assert "carried on" in log_of(spec)
    # The executor still works: a new launcher is started for the next runner.
    again = spec_for(tmp_path / "again", python("print('again')"))
    assert finish(executor, executor.launch(again), again).exit_code == 0
    executor.close()
