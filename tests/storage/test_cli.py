"""``openarts obs cp`` and ``openarts obs ls`` through a real subprocess, on a temporary data dir."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from openarts.config import Settings
from openarts.storage import ObjectStore, parse_obs_url

OPENARTS = Path(sys.executable).parent / "openarts"


def environment(data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "OPENARTS_DATA_DIR": str(data_dir)}
    env.pop("OPENARTS_OBS_ENDPOINT", None)
    return env


def run(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [str(OPENARTS), "obs", *args]
    return subprocess.run(command, env=environment(data_dir), capture_output=True, text=True, timeout=60, check=False)


def start(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    command = [str(OPENARTS), "obs", *args]
    return subprocess.Popen(
        command, env=environment(data_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_copy_a_folder_up_list_it_and_copy_it_back(tmp_path: Path) -> None:
    data = tmp_path / "data"
    source = tmp_path / "code"
    (source / "pkg").mkdir(parents=True)
    (source / "train.py").write_text("print('hi')\n")
    (source / "pkg" / "data.csv").write_text("a,b\n1,2\n")
    (source / "pkg" / "leak").symlink_to("/etc/passwd")

    up = run(data, "cp", str(source), "obs://bucket/code/")
    assert up.returncode == 0, up.stderr
    assert "leak" in up.stderr and "symbolic link" in up.stderr

    listing = run(data, "ls", "obs://bucket/code")
    assert listing.returncode == 0, listing.stderr
    assert [line.split() for line in listing.stdout.splitlines()] == [["0", "code/pkg/"], ["12", "code/train.py"]]
    one = run(data, "ls", "obs://bucket/code/train.py")
    assert one.stdout.split() == ["12", "code/train.py"]

    # What the CLI wrote is what a server on the same data dir sees: it is only the folder.
    store = ObjectStore(Settings.from_env({"OPENARTS_DATA_DIR": str(data)}))
    assert store.read_bytes(parse_obs_url("/bucket/code/pkg/data.csv")) == b"a,b\n1,2\n"

    down = run(data, "cp", "obs://bucket/code/", str(tmp_path / "back"))
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "back" / "train.py").read_text() == "print('hi')\n"
    assert (tmp_path / "back" / "pkg" / "data.csv").read_text() == "a,b\n1,2\n"
    assert not (tmp_path / "back" / "pkg" / "leak").exists()

    single = run(data, "cp", "obs://bucket/code/train.py", str(tmp_path / "main.py"))
    assert single.returncode == 0, single.stderr
    assert (tmp_path / "main.py").read_text() == "print('hi')\n"


def test_bad_urls_and_usage_errors_exit_1(tmp_path: Path) -> None:
    # Started together: each is a process start-up, and they do not depend on each other.
    bad_urls = [
        ("ls", "obs://bucket/../etc/"),
        ("cp", "file:///etc/passwd", "obs://bucket/x"),  # every hostile value is covered in test_paths.py
    ]
    usage = [("cp", "a", "b"), ("ls", "obs://bucket/nothing/")]
    processes = [start(tmp_path / "data", *args) for args in bad_urls + usage]
    stderrs = [process.communicate(timeout=60)[1] for process in processes]
    for process, stderr in zip(processes, stderrs, strict=True):
        assert process.returncode == 1
        assert stderr.startswith("error: ") and "Traceback" not in stderr
    for stderr in stderrs[: len(bad_urls)]:
        assert "InvalidObsPath" in stderr and "ModelArts.2791" in stderr
    assert not (tmp_path / "data" / "obs").exists()
