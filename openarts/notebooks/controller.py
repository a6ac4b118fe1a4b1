"""The notebook controller: drives instance rows towards real Jupyter servers and back.

One thread. Each pass reads the instances that need something and acts on each in its own transactions,
so one bad row never stops the others:

- CREATING / STARTING: launch JupyterLab through the compute executor (the row records the port first,
  the process after, so a crash in between never starts two), then RUNNING once it answers.
- RUNNING: watch the process; stop the instance when its lease ends (TIMING: ``create_at + duration``;
  IDLE: ``duration`` without activity, as Jupyter's own ``/api/status`` reports it).
- STOPPING: SIGTERM (Jupyter shuts its kernels down), SIGKILL after a grace, then sweep any kernel left.
- DELETING: remove the instance's folder and row.
- Storages: mount the MOUNTING ones, unmount the UNMOUNTING ones.

Deadlines live in the rows, so a restart keeps them; the loop sleeps until the nearest one (or a wake-up:
a request, a process exit), so a lease ends within a second of its time.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from openarts.compute.executor import Executor, LaunchSpec, ProcessHandle, log_tail
from openarts.compute.local import LocalExecutor
from openarts.core.clock import to_ms
from openarts.core.errors import ApiError
from openarts.core.services import Services
from openarts.notebooks import jupyter, service
from openarts.notebooks import storage as storages
from openarts.notebooks.folders import InstanceDir
from openarts.notebooks.tables import Notebook, NotebookStorage
from openarts.storage.store import ObjectStore

log = logging.getLogger(__name__)

BUSY_POLL_S = 0.05  # while an instance starts or stops
IDLE_POLL_S = 1.0  # at most this long between looks at running instances (a moved test clock, a dead server)
START_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0
IDLE_CHECK_S = 5.0  # how often IDLE leases ask Jupyter for its activity
USAGE_EVERY_S = 60.0
PROBE_TIMEOUT_S = 0.5
LOG_TAIL_BYTES = 4096


class NotebookController:
    def __init__(self, services: Services, executor: Executor, store: ObjectStore) -> None:
        self.services = services
        self.executor = executor
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_activity_check: dict[str, float] = {}
        self._last_usage: dict[str, float] = {}

    # --- life cycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="notebook-controller", daemon=True)
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
            wait: float | None = BUSY_POLL_S
            try:
                wait = self.reconcile()
            except Exception:
                log.exception("notebook controller pass failed")
            service.wake_controller.wait(wait)

    def folder(self, notebook_id: str) -> InstanceDir:
        return InstanceDir.of(self.services.settings, notebook_id)

    def _now(self) -> float:
        return self.services.clock.now()

    # --- recovery ----------------------------------------------------------------------------------

    def recover(self) -> None:
        """After a restart: keep each running instance whose Jupyter server is alive and answering; mark
        the others ERROR with the reason (and end what is left of them). Starting ones go on starting."""
        with self.services.db.read() as session:
            rows = session.execute(
                select(Notebook.id).where(Notebook.status == service.RUNNING, Notebook.pid.is_not(None))
            ).all()
        for (notebook_id,) in rows:
            self._guard(notebook_id, self._readopt, notebook_id)

    def _readopt(self, notebook_id: str) -> None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.pid is None or notebook.process_start_time is None:
            return
        handle = ProcessHandle(notebook.pid, notebook.process_start_time)
        if self.executor.is_alive(handle):
            if notebook.port is not None and jupyter.probe(notebook.port, notebook.id, notebook.token, 2.0):
                log.info("notebook %s: re-adopted its Jupyter server (pid %s)", notebook.id, notebook.pid)
                return
            self.executor.kill(handle)
            reason = "the server restarted and the instance's Jupyter server no longer answered"
        else:
            reason = "the server restarted and the instance's Jupyter server had ended meanwhile"
        self._end(notebook_id, service.ERROR, reason)

    # --- one pass ------------------------------------------------------------------------------------

    def reconcile(self) -> float | None:
        """One pass over every instance that needs something; how long the loop may sleep after it
        (None: until woken)."""
        with self.services.db.read() as session:
            rows = session.execute(
                select(Notebook.id, Notebook.status).where(Notebook.status.in_(service.ACTIVE))
            ).all()
            pending = session.execute(
                select(NotebookStorage.id, NotebookStorage.instance_id).where(
                    NotebookStorage.status.in_((storages.MOUNTING, storages.UNMOUNTING))
                )
            ).all()
        for storage_id, notebook_id in pending:
            self._guard(notebook_id, self._converge_storage, storage_id)
        waits: list[float] = []
        for notebook_id, status in rows:
            wait = self._guard(notebook_id, self._step, notebook_id, status)
            if wait is not None:
                waits.append(wait)
        return min(waits) if waits else None

    def _guard(self, notebook_id: str, action: Callable[..., float | None], *args: Any) -> float | None:
        """Run one instance's step; a failure fails that instance with the reason, never the whole pass."""
        try:
            return action(*args)
        except Exception as exc:
            log.exception("notebook %s: controller step failed", notebook_id)
            self._fail_after_error(notebook_id, exc)
            return BUSY_POLL_S

    def _fail_after_error(self, notebook_id: str, exc: Exception) -> None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.status not in service.ACTIVE:
            return
        if notebook.status == service.DELETING:
            self._record(notebook_id, fail_reason=f"deleting failed: {exc}")
            return
        failed = {service.CREATING: service.CREATE_FAILED, service.STARTING: service.START_FAILED}
        self._kill_server(notebook)
        self._end(notebook_id, failed.get(notebook.status, service.ERROR), f"internal error: {exc}")

    def _step(self, notebook_id: str, status: str) -> float | None:
        if status in (service.CREATING, service.STARTING):
            return self._starting(notebook_id)
        if status == service.RUNNING:
            return self._running(notebook_id)
        if status == service.STOPPING:
            return self._stopping(notebook_id)
        if status == service.DELETING:
            self._delete(notebook_id)
        return None

    # --- starting ----------------------------------------------------------------------------------

    def _starting(self, notebook_id: str) -> float | None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.status not in (service.CREATING, service.STARTING):
            return None
        folder = self.folder(notebook_id)
        failed = service.CREATE_FAILED if notebook.status == service.CREATING else service.START_FAILED
        if notebook.pid is None or notebook.process_start_time is None:
            found = self.executor.find(folder.exit_file) if notebook.port is not None else None
            if found is not None:  # launched by a previous life that died before recording the pid
                self._record(notebook_id, pid=found.pid, process_start_time=found.start_time)
            else:
                self._launch(notebook, folder, failed)
            return BUSY_POLL_S
        handle = ProcessHandle(notebook.pid, notebook.process_start_time)
        outcome = self.executor.outcome(handle, folder.exit_file)
        if outcome is not None:
            code = "no exit code" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
            jupyter.sweep(folder.state)
            self._end(notebook_id, failed, f"JupyterLab exited while starting ({code}):\n{self._tail(folder)}")
            return None
        assert notebook.port is not None
        if jupyter.probe(notebook.port, notebook.id, notebook.token, PROBE_TIMEOUT_S):
            now_ms = to_ms(self._now())
            self._record(notebook_id, status=service.RUNNING, last_activity=now_ms, update_at=now_ms)
            log.info("notebook %s: running on port %s", notebook_id, notebook.port)
            return IDLE_POLL_S
        started = (notebook.launched_at or 0) / 1000
        if self._now() - started > START_TIMEOUT_S:
            self._kill_server(notebook)
            self._end(
                notebook_id, failed, f"JupyterLab did not answer within {START_TIMEOUT_S:g} s:\n{self._tail(folder)}"
            )
            return None
        return BUSY_POLL_S

    def _launch(self, notebook: Notebook, folder: InstanceDir, failed: str) -> None:
        try:
            with self.services.db.read() as session:
                runtime = service.image_runtime(session, notebook.project_id, notebook.workspace_id, notebook.image_id)
        except ApiError as exc:
            self._end(notebook.id, failed, exc.message)
            return
        for path in (folder.work, folder.state):
            path.mkdir(parents=True, exist_ok=True)
        port = jupyter.free_port()
        # The port first, the process after: a crash in between leaves a row with a port and no pid, which
        # the next pass adopts (found by its exit file) or launches; never two servers.
        self._record(notebook.id, port=port, launched_at=to_ms(self._now()))
        argv, env = jupyter.server_command(
            runtime.python,
            instance_id=notebook.id,
            port=port,
            token=notebook.token,
            work_dir=folder.work,
            state_dir=folder.state,
        )
        spec = LaunchSpec(
            argv=argv,
            cwd=folder.state,  # the executor makes tmp/ in it; JupyterLab moves itself into the work folder
            env=env,
            log_path=folder.log,
            exit_path=folder.exit_file,
            memory_limit_mb=None,  # RLIMIT_AS would cap each kernel at the flavor's size, not the sum
        )
        handle = self.executor.launch(spec)
        self._record(notebook.id, pid=handle.pid, process_start_time=handle.start_time)

    # --- running -------------------------------------------------------------------------------------

    def _running(self, notebook_id: str) -> float | None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.status != service.RUNNING:
            return None
        folder = self.folder(notebook_id)
        if notebook.pid is None or notebook.process_start_time is None:
            self._end(notebook_id, service.ERROR, "the instance's Jupyter server is unknown")
            return None
        handle = ProcessHandle(notebook.pid, notebook.process_start_time)
        outcome = self.executor.outcome(handle, folder.exit_file)
        if outcome is not None:
            jupyter.sweep(folder.state)
            code = "no exit code" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
            self._end(notebook_id, service.ERROR, f"the Jupyter server exited ({code}):\n{self._tail(folder)}")
            return None
        now = self._now()
        self._record_usage(notebook, folder, now)
        expiry_ms = service.lease_expiry_ms(notebook)
        if expiry_ms is not None:
            if to_ms(now) >= expiry_ms:
                self._auto_stop(notebook_id, "the lease expired")
                return BUSY_POLL_S
            return min(IDLE_POLL_S, expiry_ms / 1000 - now)
        if notebook.lease_type == "IDLE" and notebook.lease_enable:
            return self._idle_check(notebook, now)
        return IDLE_POLL_S

    def _idle_check(self, notebook: Notebook, now: float) -> float:
        last_ms = max(notebook.last_activity or 0, notebook.lease_update_at)
        if now - self._last_activity_check.get(notebook.id, 0.0) >= IDLE_CHECK_S and notebook.port is not None:
            self._last_activity_check[notebook.id] = now
            activity = jupyter.activity(notebook.port, notebook.id, notebook.token)
            if activity is not None:
                seen_ms = to_ms(activity.last_activity.timestamp())
                if seen_ms > last_ms:
                    last_ms = seen_ms
                    self._record(notebook.id, last_activity=seen_ms)
        idle_until = (last_ms + notebook.lease_duration) / 1000
        if now >= idle_until:
            minutes = notebook.lease_duration / 60000
            self._auto_stop(notebook.id, f"no kernel or terminal activity for {minutes:g} minutes (IDLE lease)")
            return BUSY_POLL_S
        return max(0.0, min(IDLE_POLL_S, idle_until - now))

    def _auto_stop(self, notebook_id: str, reason: str) -> None:
        with self.services.db.write(durable=False) as session:
            notebook = session.get(Notebook, notebook_id)
            if notebook is not None and notebook.status == service.RUNNING:
                service.request_stop(notebook, to_ms(self._now()), reason)
        log.info("notebook %s: stopping: %s", notebook_id, reason)

    def _record_usage(self, notebook: Notebook, folder: InstanceDir, now: float) -> None:
        if now - self._last_usage.get(notebook.id, 0.0) < USAGE_EVERY_S:
            return
        self._last_usage[notebook.id] = now
        used = storages.usage_gb(folder)
        if notebook.volume.get("usage") != used:
            self._record(notebook.id, volume={**notebook.volume, "usage": used})

    # --- stopping and deleting -----------------------------------------------------------------------

    def _stopping(self, notebook_id: str) -> float | None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.status != service.STOPPING:
            return None
        folder = self.folder(notebook_id)
        if notebook.pid is not None and notebook.process_start_time is not None:
            handle = ProcessHandle(notebook.pid, notebook.process_start_time)
            if self.executor.outcome(handle, folder.exit_file) is None:
                now = self._now()
                if notebook.stop_requested_at is None:
                    self.executor.terminate(handle)  # Jupyter shuts its kernels down on SIGTERM
                    self._record(notebook_id, stop_requested_at=to_ms(now))
                elif now - notebook.stop_requested_at / 1000 > STOP_GRACE_S:
                    self.executor.kill(handle)
                return BUSY_POLL_S
        jupyter.sweep(folder.state)  # kernels Jupyter did not end (or could not: a SIGKILL)
        self._sync_back(notebook_id, folder)
        self._last_usage.pop(notebook_id, None)
        self._end(notebook_id, service.STOPPED, None, volume_usage=storages.usage_gb(folder))
        log.info("notebook %s: stopped (%s)", notebook_id, notebook.stop_reason)
        return None

    def _sync_back(self, notebook_id: str, folder: InstanceDir) -> None:
        with self.services.db.read() as session:
            rows = session.scalars(
                select(NotebookStorage).where(
                    NotebookStorage.instance_id == notebook_id, NotebookStorage.status == storages.MOUNTED
                )
            ).all()
            for row in rows:
                storages.sync_back(self.store, folder, row)

    def _delete(self, notebook_id: str) -> None:
        notebook = self._load(notebook_id)
        if notebook is None or notebook.status != service.DELETING:
            return
        folder = self.folder(notebook_id)
        self._kill_server(notebook)
        with self.services.db.read() as session:
            mounted = session.scalars(select(NotebookStorage).where(NotebookStorage.instance_id == notebook_id)).all()
            for storage in mounted:
                storages.unmount(self.store, folder, storage)  # links go, copies go back to the store first
        shutil.rmtree(folder.root, ignore_errors=True)
        with self.services.db.write() as session:
            row = session.get(Notebook, notebook_id)
            if row is not None and row.status == service.DELETING:
                session.delete(row)
        self._last_activity_check.pop(notebook_id, None)
        log.info("notebook %s: deleted", notebook_id)

    def _kill_server(self, notebook: Notebook) -> None:
        """End whatever is left of the instance's server and kernels (no exit code is needed any more)."""
        if notebook.pid is not None and notebook.process_start_time is not None:
            self.executor.kill(ProcessHandle(notebook.pid, notebook.process_start_time))
        jupyter.sweep(self.folder(notebook.id).state)

    # --- storages --------------------------------------------------------------------------------------

    def _converge_storage(self, storage_id: str) -> None:
        with self.services.db.read() as session:
            row = session.get(NotebookStorage, storage_id)
            status = session.scalar(select(Notebook.status).where(Notebook.id == row.instance_id)) if row else None
        if row is None or status is None or status == service.DELETING:
            return
        folder = self.folder(row.instance_id)
        if row.status == storages.UNMOUNTING:
            storages.unmount(self.store, folder, row)
            with self.services.db.write() as session:
                current = session.get(NotebookStorage, storage_id)
                if current is not None:
                    session.delete(current)
            return
        folder.work.mkdir(parents=True, exist_ok=True)
        try:
            storages.mount(self.store, folder, row)
            status, reason = storages.MOUNTED, ""
        except Exception as exc:  # the user's path or the store: say so on the storage, not the instance
            status, reason = storages.MOUNT_FAILED, str(exc)
        with self.services.db.write() as session:
            current = session.get(NotebookStorage, storage_id)
            if current is not None and current.status == storages.MOUNTING:
                current.status, current.failure_reason = status, reason

    # --- rows ------------------------------------------------------------------------------------------

    def _load(self, notebook_id: str) -> Notebook | None:
        with self.services.db.read() as session:
            notebook = session.get(Notebook, notebook_id)
            if notebook is not None:
                session.expunge(notebook)
            return notebook

    def _record(self, notebook_id: str, **values: Any) -> None:
        with self.services.db.write() as session:
            notebook = session.get(Notebook, notebook_id)
            if notebook is not None:
                for name, value in values.items():
                    setattr(notebook, name, value)

    def _end(self, notebook_id: str, status: str, reason: str | None, volume_usage: float | None = None) -> None:
        """The server is gone: the instance rests in ``status``; ``reason`` is why, if it failed."""
        now_ms = to_ms(self._now())
        with self.services.db.write() as session:
            notebook = session.get(Notebook, notebook_id)
            if notebook is None:
                return
            notebook.status, notebook.update_at = status, now_ms
            notebook.pid = notebook.process_start_time = notebook.port = notebook.stop_requested_at = None
            if reason is not None:
                notebook.fail_reason = reason.strip()
            if volume_usage is not None:
                notebook.volume = {**notebook.volume, "usage": volume_usage}

    def _tail(self, folder: InstanceDir) -> str:
        text, _ = log_tail(folder.log, LOG_TAIL_BYTES)
        return "\n".join(text.splitlines()[-10:])


def make_controller(services: Services) -> NotebookController:
    return NotebookController(
        services, LocalExecutor(on_exit=service.wake_controller.set), ObjectStore(services.settings)
    )
