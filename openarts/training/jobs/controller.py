"""The training controller: drives job rows towards real processes and back.

One thread. Each pass reads the rows that need something (new, queued, running, stopping) and acts on
each in its own transaction, so one bad row never stops the others. Rows are the truth: after a restart
the same pass re-adopts the processes still running (same pid and start time), finishes the ones that
ended meanwhile from their exit files, and fails the ones that vanished, saying why. A job is launched
only after its row says Running, so a crash can never launch it twice.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from openarts.autosearch.tuner import Tuner
from openarts.compute import claims
from openarts.compute.capacity import admit, machine_capacity
from openarts.compute.executor import Executor, ProcessHandle
from openarts.core.clock import to_ms
from openarts.core.hot_reads import HotQuery
from openarts.core.services import Services
from openarts.storage.store import ObjectStore
from openarts.training.jobs import service
from openarts.training.jobs.tables import JobMetricSample, TrainingJob
from openarts.training.jobs.workdir import JobDir, log_tail, prepare, stage, upload_outputs

log = logging.getLogger(__name__)

# Every pass starts with this read: a hot read, at the driver's speed (see core/hot_reads.py). The phases
# are spelled out (not ``IN``) because a hot query cannot expand a list.
_NEEDING_ATTENTION = HotQuery(
    select(TrainingJob.id, TrainingJob.phase, TrainingJob.delete_requested)
    .where(or_(*(TrainingJob.phase == phase for phase in service.ACTIVE), TrainingJob.delete_requested.is_(True)))
    .order_by(TrainingJob.queue_seq)
)

POLL_S = 0.05
STOP_GRACE_S = 10.0
METRIC_EVERY_S = 10.0
FIRST_SAMPLE_AFTER_S = 2.0  # scanning a process tree costs milliseconds: jobs shorter than this skip it


class JobController:
    def __init__(self, services: Services, executor: Executor, store: ObjectStore) -> None:
        self.services = services
        self.executor = executor
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._terminated: set[str] = set()  # jobs sent SIGTERM in this life of the server
        self._last_sample: dict[str, float] = {}
        self._searches: dict[str, tuple[dict[str, Any], int]] = {}  # running searches: (plan, start time)
        self.tuner = Tuner(services, executor)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="training-controller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        service.wake_controller.set()

    def stop(self) -> None:
        self._stop.set()
        service.wake_controller.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            service.wake_controller.clear()
            busy = True
            try:
                busy = self.reconcile() > 0
            except Exception:
                log.exception("training controller pass failed")
            # With nothing to drive, sleep until woken (a create, a stop, a process exit, shutdown):
            # polling an idle database would only take CPU and the GIL from the API.
            service.wake_controller.wait(POLL_S if busy else None)

    def folder(self, job_id: str) -> JobDir:
        return JobDir(self.services.settings.jobs_dir / job_id)

    def _now_ms(self) -> int:
        return to_ms(self.services.clock.now())

    # --- one pass ------------------------------------------------------------------------------

    def reconcile(self) -> int:
        """One pass over every job that needs something; how many did."""
        rows = self.services.db.hot_rows(_NEEDING_ATTENTION, {})
        for job_id, phase, delete_requested in rows:
            self._guard(job_id, self._step, job_id, phase, delete_requested)
        if any(phase in ("Creating", "Pending") for _, phase, _ in rows):  # only a queue has anyone to admit
            self._admit()
        return len(rows)

    def _guard(self, job_id: str, action: Callable[..., None], *args: object) -> None:
        """Run one job's step; a failure fails that job with the reason, never the whole pass."""
        try:
            action(*args)
        except Exception as exc:
            log.exception("training job %s: controller step failed", job_id)
            self._searches.pop(job_id, None)
            with self.services.db.write(durable=False) as session:
                job = session.get(TrainingJob, job_id)
                if job is not None and job.phase in service.ACTIVE:
                    self._finish(session, job, exit_code=None, failure=f"internal error: {exc}")

    def _step(self, job_id: str, phase: str, delete_requested: bool) -> None:
        if phase == "Creating":
            with self.services.db.write(durable=False) as session:
                job = session.get(TrainingJob, job_id)
                if job is not None and job.phase == "Creating":
                    job.phase, job.secondary_phase = "Pending", "Queuing"
                    service.add_event(session, job.id, self._now_ms(), "Job is waiting for resources.")
        elif phase in ("Running", "Terminating"):
            if (search := self._searches.get(job_id)) is not None:
                self._watch_search(job_id, *search, phase)
            else:
                self._watch(job_id)
        elif delete_requested and phase not in service.ACTIVE:
            self._remove(job_id)

    # --- admission and launch ------------------------------------------------------------------

    def _admit(self) -> None:
        with self.services.db.read() as session:
            rows = session.execute(
                select(TrainingJob.id, TrainingJob.phase, TrainingJob.cpus, TrainingJob.memory_gb, TrainingJob.launch)
                .where(TrainingJob.phase.in_(("Pending", "Running", "Terminating")))
                .order_by(TrainingJob.queue_seq)
            ).all()
            others = claims.held(session, besides="training")  # notebooks, services on the same pool
        demands = [(r.phase, service.job_demand(r.id, r.cpus, r.memory_gb, r.launch)) for r in rows]
        queue = [demand for phase, demand in demands if phase == "Pending"]
        running = [demand for phase, demand in demands if phase != "Pending"] + others
        # Asked at each admission: a Ray cluster's nodes come and go (its answer is kept a few seconds).
        for job_id in admit(queue, running, machine_capacity(self.services.settings)):
            self._guard(job_id, self._launch, job_id)

    def _launch(self, job_id: str) -> None:
        now_ms = self._now_ms()
        with self.services.db.write(durable=False) as session:
            job = session.get(TrainingJob, job_id)
            if job is None or job.phase != "Pending":
                return
            job.phase = job.secondary_phase = "Running"
            job.start_time = now_ms
            plan = dict(job.launch)
            if plan.get("gpus"):
                plan["gpus"] = _free_gpus(session, job.id, len(plan["gpus"]))
                job.launch = plan
            service.add_event(session, job.id, now_ms, "Job is running.")
        # From here on the row says Running: a crash before the pid is stored fails the job at
        # restart (see recover), it never launches it again.
        folder = self.folder(job_id)
        try:
            if plan.get("search"):
                prepare(plan, folder, self.store, remote=self.executor.stages_remotely)
                service.wake_controller.set()  # the tuner starts the first trials on the very next pass
                return
            spec = stage(plan, folder, self.store, remote=self.executor.stages_remotely)
        except Exception as exc:
            with self.services.db.write(durable=False) as session:
                job = session.get_one(TrainingJob, job_id)
                self._finish(session, job, exit_code=None, failure=f"staging the job failed: {exc}")
            return
        handle = self.executor.launch(spec)
        self._last_sample[job_id] = self.services.clock.now() - METRIC_EVERY_S + FIRST_SAMPLE_AFTER_S
        with self.services.db.write(durable=False) as session:
            job = session.get_one(TrainingJob, job_id)
            job.pid, job.process_start_time = handle.pid, handle.start_time

    # --- running jobs --------------------------------------------------------------------------

    def _watch(self, job_id: str) -> None:
        with self.services.db.read() as session:
            job = session.get(TrainingJob, job_id)
            if job is not None and job.launch.get("search"):
                # A search's plan and start never change once it runs: later passes skip this read.
                self._searches[job_id] = (dict(job.launch), job.start_time)
                self._watch_search(job_id, dict(job.launch), job.start_time, job.phase)
                return
            if job is None or job.pid is None or job.process_start_time is None:
                return
            handle = ProcessHandle(job.pid, job.process_start_time)
            plan, phase, start_time = job.launch, job.phase, job.start_time
            stop_requested_at, kill_sent = job.stop_requested_at, job.kill_sent
        folder = self.folder(job_id)
        outcome = self.executor.outcome(handle, folder.exit_file)
        if outcome is not None:
            problems = upload_outputs(plan, folder, self.store, remote=self.executor.stages_remotely)
            with self.services.db.write(durable=False) as session:
                job = session.get_one(TrainingJob, job_id)
                if outcome.lost:
                    failure = (
                        "the job's processes ended without an exit code (killed, or lost while the server was down)"
                    )
                    self._finish(session, job, exit_code=None, failure=failure, problems=problems)
                else:
                    self._finish(session, job, exit_code=outcome.exit_code, problems=problems)
            self._terminated.discard(job_id)
            self._last_sample.pop(job_id, None)
            return
        now = self.services.clock.now()
        auto_stop_s = plan.get("auto_stop_s")
        if phase == "Running" and auto_stop_s and now - start_time / 1000 > auto_stop_s:
            with self.services.db.write(durable=False) as session:
                job = session.get_one(TrainingJob, job_id)
                service.request_stop(session, job, to_ms(now), f"Stopped by auto_stop after {auto_stop_s // 3600} h.")
            phase, stop_requested_at = "Terminating", to_ms(now)
        if phase == "Terminating" and stop_requested_at is not None:
            if job_id not in self._terminated:
                self.executor.terminate(handle)
                self._terminated.add(job_id)
            elif not kill_sent and now - stop_requested_at / 1000 > STOP_GRACE_S:
                self.executor.kill(handle)
                with self.services.db.write(durable=False) as session:
                    session.get_one(TrainingJob, job_id).kill_sent = True
        self._sample(job_id, handle, now)

    def _watch_search(self, job_id: str, plan: dict[str, Any], start_time: int, phase: str) -> None:
        now = self.services.clock.now()
        auto_stop_s = plan.get("auto_stop_s")
        if phase == "Running" and auto_stop_s and now - start_time / 1000 > auto_stop_s:
            with self.services.db.write(durable=False) as session:
                job = session.get_one(TrainingJob, job_id)
                service.request_stop(session, job, to_ms(now), f"Stopped by auto_stop after {auto_stop_s // 3600} h.")
            phase = "Terminating"
        folder = self.folder(job_id)
        end = self.tuner.step(job_id, plan, folder, stopping=phase == "Terminating")
        if end is None:
            return
        self._searches.pop(job_id, None)
        problems = upload_outputs(plan, folder, self.store, remote=self.executor.stages_remotely)
        with self.services.db.write(durable=False) as session:
            job = session.get_one(TrainingJob, job_id)
            if end.succeeded:
                self._finish(session, job, exit_code=0, problems=problems)
                job.message = job.message or end.message
            else:
                self._finish(session, job, exit_code=None, failure=end.message, problems=problems)

    def _sample(self, job_id: str, handle: ProcessHandle, now: float) -> None:
        if now - self._last_sample.get(job_id, 0.0) < METRIC_EVERY_S:
            return
        self._last_sample[job_id] = now
        usage = self.executor.usage(handle)
        with self.services.db.write(durable=False) as session:
            session.merge(
                JobMetricSample(
                    job_id=job_id, time=to_ms(now), cpu_percent=usage.cpu_percent, memory_mb=usage.memory_mb
                )
            )

    def _finish(
        self,
        session: Session,
        job: TrainingJob,
        *,
        exit_code: int | None,
        failure: str | None = None,
        problems: list[str] | None = None,
    ) -> None:
        now_ms = self._now_ms()
        job.exit_code = exit_code
        job.end_time = now_ms
        notes = list(problems or [])
        if job.stop_requested_at is not None:
            job.phase = job.secondary_phase = "Terminated"
            job.message = "; ".join([job.message or "Stopped.", *notes])
        elif failure is None and exit_code == 0 and not notes:
            job.phase = job.secondary_phase = "Completed"
            job.message = ""
        else:
            job.phase = job.secondary_phase = "Failed"
            reason = failure or f"exit code {exit_code}"
            tail = log_tail(self.folder(job.id))
            job.message = "; ".join([reason, *notes]) + (f"\n{tail}" if tail else "")
        level = "Info" if job.phase != "Failed" else "Error"
        service.add_event(session, job.id, now_ms, f"Job {job.phase.lower()}: {job.message or 'exit code 0'}", level)

    def _remove(self, job_id: str) -> None:
        with self.services.db.write(durable=False) as session:
            job = session.get(TrainingJob, job_id)
            if job is not None:
                session.delete(job)
        shutil.rmtree(self.folder(job_id).root, ignore_errors=True)

    # --- restart -------------------------------------------------------------------------------

    def recover(self) -> None:
        """Jobs whose launch was interrupted by a crash: adopt their process if it exists, else fail them."""
        with self.services.db.read() as session:
            orphans = list(
                session.scalars(
                    select(TrainingJob.id).where(
                        TrainingJob.phase.in_(("Running", "Terminating")), TrainingJob.pid.is_(None)
                    )
                )
            )
        for job_id in orphans:
            with self.services.db.read() as session:
                if session.get_one(TrainingJob, job_id).launch.get("search"):
                    continue  # a search has no process of its own: its trials recover themselves
            found = self.executor.find(self.folder(job_id).exit_file)
            with self.services.db.write(durable=False) as session:
                job = session.get_one(TrainingJob, job_id)
                if found is not None:
                    job.pid, job.process_start_time = found.pid, found.start_time
                elif (code := _recorded_exit_code(self.folder(job_id).exit_file)) is not None:
                    self._finish(session, job, exit_code=code)
                else:
                    self._finish(session, job, exit_code=None, failure="the server restarted while launching the job")


def _recorded_exit_code(exit_file: Path) -> int | None:
    try:
        return int(exit_file.read_text().strip())
    except (OSError, ValueError):
        return None


def _free_gpus(session: Session, job_id: str, count: int) -> list[int]:
    """The lowest-numbered cards no other running job holds (admission made sure enough are free)."""
    held: set[int] = set()
    for launch in session.scalars(
        select(TrainingJob.launch).where(TrainingJob.phase.in_(("Running", "Terminating")), TrainingJob.id != job_id)
    ):
        held.update(launch.get("gpus") or [])
    free = [card for card in range(count + len(held)) if card not in held]
    return free[:count]


def make_controller(services: Services) -> JobController:
    """Jobs and search trials run on the configured executor: local processes, or a Ray cluster."""
    from openarts.compute.executors import make_executor

    executor = make_executor(services.settings, service.wake_controller.set)
    return JobController(services, executor, ObjectStore(services.settings))
