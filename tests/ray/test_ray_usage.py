"""The usage of a job on Ray: its node measures the command's process tree and writes the figures into the
log as escape sequences; the server's follower takes them out of the log and serves the last ones.

Cheap tests first (the record's parsing, the entrypoint's measuring run here), then a job on the cluster
that burns a core and holds memory."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray")

from openarts.compute import ray_entry
from openarts.compute.executor import Usage
from openarts.compute.ray_executor import RayExecutor, split_usage
from tests.ray.conftest import RayCluster
from tests.ray.test_ray_executor import spec_for, wait_for_log, wait_outcome

PY = sys.executable


def busy(seconds: float) -> str:
    """A script that holds about 200 MB (resident: the bytes are written) and burns one core for a while."""
    return (
        "import time\nx = bytearray(200 * 2**20)\nfor i in range(0, len(x), 4096): x[i] = 1\n"
        f"print('busy', flush=True)\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass\n"
    )


def record(cpu: float, memory: float) -> str:
    return ray_entry.USAGE_RECORD.format(cpu=cpu, memory=memory)


def test_records_are_taken_out_of_the_log_and_the_last_one_counts() -> None:
    text = f"epoch 1\n{record(99.5, 10)}epoch 2 loss{record(150, 321.5)} 0.5\n"
    assert split_usage(text) == ("epoch 1\nepoch 2 loss 0.5\n", Usage(cpu_percent=150.0, memory_mb=321.5), len(text))
    assert split_usage("no records\n") == ("no records\n", None, 11)


def test_a_record_cut_short_at_the_end_waits_for_the_rest() -> None:
    whole = record(12.5, 64)
    for cut in (1, 5, len(whole) - 1):
        text = "progress 50%" + whole[:cut]
        assert split_usage(text) == ("progress 50%", None, len("progress 50%")), cut
        assert split_usage(text, final=True)[2] == len(text)  # the job has ended: nothing more will come
    # Output that only looks like the start of a record, long ago, is not held back for ever.
    text = ray_entry.USAGE_RECORD[:20] + "x" * 100
    assert split_usage(text) == (text, None, len(text))


def test_the_entrypoint_measures_the_command_tree(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    script = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {busy(1.5)!r}])\n"
    job = {"argv": [PY, "-c", script], "cwd": str(tmp_path), "env": {"PATH": "/usr/bin:/bin"}, "usage_every_s": 0.3}
    assert ray_entry.run_command(job, {}, report_usage=True) == 0
    out = capfd.readouterr().out
    kept, usage, _ = split_usage(out, final=True)
    assert "busy" in kept and "\x1b" not in kept
    records = [split_usage(part + "\x07")[1] for part in out.split("\x07")[:-1]]
    assert usage is not None and len(records) >= 2, out
    # The child of the command counts: a core's worth of CPU, and its 200 MB.
    assert max(r.cpu_percent for r in records if r) > 50 and max(r.memory_mb for r in records if r) > 150, records


@pytest.mark.timeout(120)
def test_a_running_job_reports_its_usage(ray_cluster: RayCluster, tmp_path: Path) -> None:
    executor = RayExecutor(ray_cluster.address, usage_every_s=0.5)
    spec = spec_for(tmp_path, [PY, "-c", busy(120)])
    handle = executor.launch(spec)
    try:
        wait_for_log(spec, "busy")
        deadline = time.monotonic() + 30
        usage = executor.usage(handle)
        while not (usage.cpu_percent > 50 and usage.memory_mb > 150) and time.monotonic() < deadline:
            time.sleep(0.5)
            usage = executor.usage(handle)
        assert usage.cpu_percent > 50 and usage.memory_mb > 150, usage
    finally:
        executor.terminate(handle)
    wait_outcome(executor, handle, spec)
    assert "\x1b]" not in spec.log_path.read_text()  # the records never reach the job's log
    assert executor.usage(handle) == Usage(cpu_percent=0.0, memory_mb=0.0)  # it has ended
    executor.close()
