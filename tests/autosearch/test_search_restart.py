"""``kill -9`` in the middle of a search: finished trials stay, running ones are re-adopted, and the
search never runs more than ``num_samples`` trials."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.autosearch.search_support import rows, search_job, search_policy
from tests.support.databases import fresh_database
from tests.support.server import LiveServer
from tests.training.jobs_support import wait_for

PAUSED = """
import sys, time
args = dict(a.lstrip("-").split("=", 1) for a in sys.argv[1:])
time.sleep(0.7)
print(f"loss={(float(args['x']) - 1.5) ** 2 + (float(args['y']) + 2.0) ** 2:.6f}", flush=True)
"""


def test_a_search_survives_kill_9(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        live = LiveServer(tmp_path / "data", url, env={"OPENARTS_COMPUTE_CPUS": "2"})
        live.start()
        try:
            client = live.client()
            policy = search_policy("tpe_search", samples=6, seed=5, extra={"n_initial_points": "3"})
            job_id = client.create_training_job(search_job("restarted", live, policy, script=PAUSED)).metadata.id
            deadline = time.monotonic() + 60
            while sum(row["status"] == "TERMINATED" for row in rows(client, job_id)) < 2:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            before = {row["trial_id"]: row for row in rows(client, job_id) if row["status"] == "TERMINATED"}

            live.stop(signal.SIGKILL)
            live.start()
            client = live.client()

            assert wait_for(client, job_id, timeout=90).status.phase == "Completed"
            after = rows(client, job_id)
            assert len(after) == 6  # num_samples, not one more
            assert {row["status"] for row in after} == {"TERMINATED"}
            for trial_id, row in before.items():
                again = next(r for r in after if r["trial_id"] == trial_id)
                assert (again["config"], again["loss"]) == (row["config"], row["loss"])  # unchanged
            assert sorted(int(row[""]) for row in after) == list(range(6))
        finally:
            live.stop()
