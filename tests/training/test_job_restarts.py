"""``kill -9`` of the server while jobs run and queue: nothing is lost and nothing runs twice."""

from __future__ import annotations

import signal
from pathlib import Path

from huaweicloudsdkmodelarts.v1 import ListTrainingJobEventsRequest, ShowTrainingJobLogsPreviewRequest

from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.training.jobs_support import get, python_job, wait_for

RUNS_ONCE = """
import os, sys, time
out = sys.argv[-1].split("=", 1)[1]
print("begin", flush=True)
with open(os.path.join(out, "runs.txt"), "a") as f:
    f.write("ran\\n")
time.sleep({seconds})
print("end", flush=True)
"""


def test_running_and_queued_jobs_survive_kill_9(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        live = LiveServer(tmp_path / "data", url, env={"OPENARTS_COMPUTE_CPUS": "2"})
        live.start()
        try:
            client = live.client()
            jobs = {}
            for name, seconds in (("long", 4), ("queued", 0)):
                request = python_job(
                    name,
                    "restart-bucket",
                    RUNS_ONCE.format(seconds=seconds),
                    live,
                    outputs={"out": f"obs://restart-bucket/{name}/out/"},
                )
                jobs[name] = client.create_training_job(request).metadata.id
            wait_for(client, jobs["long"], ("Running",))
            assert wait_for(client, jobs["queued"], ("Pending", "Running")).status.phase == "Pending"

            live.stop(signal.SIGKILL)  # the job's process group lives on without the server
            live.start()
            client = live.client()

            long_done = wait_for(client, jobs["long"], timeout=60)
            queued_done = wait_for(client, jobs["queued"], timeout=60)
            assert long_done.status.phase == "Completed", long_done.status.task_statuses
            assert queued_done.status.phase == "Completed", queued_done.status.task_statuses
            for name in jobs:
                assert get(live, f"obs://restart-bucket/{name}/out/runs.txt") == "ran\n"  # exactly once
            log = client.show_training_job_logs_preview(
                ShowTrainingJobLogsPreviewRequest(training_job_id=jobs["long"], task_id="worker-0")
            ).content
            assert log.splitlines() == ["begin", "end"]  # the log is whole across the restart
            assert queued_done.status.start_time >= long_done.status.start_time + long_done.status.duration - 100
            events = client.list_training_job_events(ListTrainingJobEventsRequest(training_job_id=jobs["long"]))
            assert sum("running" in e.message for e in events.events) == 1
        finally:
            live.stop()


def _runner_pids(job_id: str) -> list[int]:
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if any(job_id in part for part in (p.info.get("cmdline") or []))
        and any(part.endswith("compute/runner.py") for part in p.info["cmdline"])
    ]


def test_jobs_that_end_or_vanish_while_the_server_is_down(backend: str, tmp_path: Path) -> None:
    import os
    import time

    with fresh_database(backend, tmp_path) as url:
        live = LiveServer(tmp_path / "data", url, env={"OPENARTS_COMPUTE_CPUS": "4"})
        live.start()
        try:
            client = live.client()
            script = "import time\nprint('working', flush=True)\ntime.sleep({})\n"
            ends = client.create_training_job(python_job("ends", "down-bucket", script.format(1), live)).metadata.id
            lost = client.create_training_job(python_job("lost", "down-bucket", script.format(60), live)).metadata.id
            for job_id in (ends, lost):  # running for real: the row says so before the process exists
                log = live.data_dir / "jobs" / job_id / "logs" / "worker-0.log"
                deadline = time.monotonic() + 30
                while not (log.exists() and "working" in log.read_text()) and time.monotonic() < deadline:
                    time.sleep(0.05)
            assert _runner_pids(lost)
            live.stop(signal.SIGKILL)
            for pid in _runner_pids(lost):
                os.killpg(pid, signal.SIGKILL)  # gone without a trace while nobody watched
            exit_file = live.data_dir / "jobs" / ends / "exit_code"
            deadline = time.monotonic() + 30
            while not exit_file.exists() and time.monotonic() < deadline:
                time.sleep(0.1)  # "ends" finishes meanwhile and records its exit code
            assert exit_file.exists()
            live.start()
            client = live.client()
            assert wait_for(client, ends, timeout=30).status.phase == "Completed"
            vanished = wait_for(client, lost, timeout=30)
            assert vanished.status.phase == "Failed"
            assert "without an exit code" in vanished.status.task_statuses[0].message
        finally:
            live.stop()
