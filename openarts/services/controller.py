"""The service controller: drives service rows towards model-server processes and back.

One thread. Each pass folds the gateway's call counts into the rows, then acts on every active service
in its own transactions (one bad row never stops the others), then rebuilds the routing table:

- deploying / running / concerning: one instance row per instance of each config entry; each instance
  is launched through the compute executor (the row records the launch first, the process after, so a
  crash in between never starts two) and becomes ready once ``GET /health`` answers. Here the port is
  chosen before launch; on a Ray node the instance takes a free one and writes it down, and the
  controller reads it back (from the shared folder, or from the object store: ``placement.py``) with the
  node's address (docs/operations.md, "Service instances"). Deploying turns
  running when every instance is ready (failed when one exits before, or on the deploy timeout);
  running turns concerning while an instance is down and back when it is up again. An instance whose
  process ends is launched again (its in-flight calls fail with a 5xx at the gateway).
- the schedule: a running service whose ``due_time`` passed is stopped.
- stopping: SIGTERM, SIGKILL after a grace, then ``stopped``. deleting: kill, remove folder and rows.

After a restart (``recover``) an instance whose process is alive and answering is kept; any other is
ended and launched again by the next pass. Nothing is lost: the rows say what should run.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from openarts.compute.engines import default_engine
from openarts.compute.executor import Executor, LaunchSpec, ProcessHandle, log_tail
from openarts.compute.executors import make_executor
from openarts.compute.local import LocalExecutor
from openarts.core.clock import to_ms
from openarts.core.services import Services
from openarts.inference import SERVER_SCRIPT
from openarts.notebooks.jupyter import free_port
from openarts.services import service
from openarts.services.placement import PORT_FILE, InstanceFiles, SharedFiles, StoredFiles
from openarts.services.routing import TABLE, Backend, Route
from openarts.services.tables import Service, ServiceInstance
from openarts.storage.store import ObjectStore

log = logging.getLogger(__name__)

BUSY_POLL_S = 0.05
IDLE_POLL_S = 1.0
DEPLOY_TIMEOUT_S = 180.0
STOP_GRACE_S = 10.0
PROBE_TIMEOUT_S = 0.5
LOG_TAIL_BYTES = 4096


def probe(host: str, port: int, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """Whether a model server answers ``GET /health`` there."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/health")
        return connection.getresponse().status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


class ServiceController:
    def __init__(self, services: Services, executor: Executor, files: InstanceFiles | None = None) -> None:
        self.services = services
        self.executor = executor
        self.files = files or SharedFiles(services.settings)
        self._on_this_machine = isinstance(executor, LocalExecutor)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- life cycle ---------------------------------------------------------------------------------

    def start(self) -> None:
        self.recover()
        self.publish_routes()
        self._thread = threading.Thread(target=self._loop, name="service-controller", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        service.wake_controller.set()

    def stop(self) -> None:
        self._stop.set()
        service.wake_controller.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush_counts()

    def _loop(self) -> None:
        while not self._stop.is_set():
            service.wake_controller.clear()
            wait = IDLE_POLL_S
            try:
                wait = self.reconcile()
            except Exception:
                log.exception("service controller pass failed")
            service.wake_controller.wait(wait)

    def _now_ms(self) -> int:
        return to_ms(self.services.clock.now())

    def folder(self, service_id: str) -> Path:
        return self.services.settings.data_dir / "services" / service_id

    # --- recovery ------------------------------------------------------------------------------------

    def recover(self) -> None:
        """Keep each instance whose process is alive and answering; end the others (relaunched next pass)."""
        with self.services.db.read() as session:
            rows = session.scalars(
                select(ServiceInstance)
                .join(Service, Service.id == ServiceInstance.service_id)
                .where(Service.status.in_(service.ACTIVE))
            ).all()
            for row in rows:
                session.expunge(row)
        for instance in rows:
            try:
                self._readopt(instance)
            except Exception:
                log.exception("service instance %s: re-adoption failed", instance.id)

    def _readopt(self, instance: ServiceInstance) -> None:
        if instance.pid is None or instance.process_start_time is None:
            if instance.launched_at is not None:  # launched by a previous life that died before recording the pid
                found = self.executor.find(self._exit_file(instance))
                if found is not None:
                    self._record(instance.id, pid=found.pid, process_start_time=found.start_time)
            return
        handle = ProcessHandle(instance.pid, instance.process_start_time)
        if self.executor.is_alive(handle) and instance.port is not None and probe(instance.host, instance.port, 2.0):
            self._record(instance.id, ready=True)
            log.info("service instance %s: re-adopted (pid %s, port %s)", instance.id, instance.pid, instance.port)
            return
        self.executor.kill(handle)
        self._record(instance.id, pid=None, process_start_time=None, port=None, ready=False)

    # --- one pass --------------------------------------------------------------------------------------

    def reconcile(self) -> float:
        self.flush_counts()
        with self.services.db.read() as session:
            rows = session.execute(select(Service.id, Service.status).where(Service.status.in_(service.ACTIVE))).all()
        waits = [IDLE_POLL_S]
        for service_id, status in rows:
            waits.append(self._guard(service_id, self._step, service_id, status))
        self.publish_routes()
        return min(waits)

    def _guard(self, service_id: str, action: Callable[..., float], *args: Any) -> float:
        try:
            return action(*args)
        except Exception as exc:
            log.exception("service %s: controller step failed", service_id)
            self._fail(service_id, f"internal error: {exc}")
            return IDLE_POLL_S

    def _step(self, service_id: str, status: str) -> float:
        if status in (service.DEPLOYING, *service.SERVING):
            return self._converge(service_id)
        if status == service.STOPPING:
            return self._stopping(service_id)
        if status == service.DELETING:
            self._delete(service_id)
        return IDLE_POLL_S

    # --- deploying and running -------------------------------------------------------------------------------

    def _converge(self, service_id: str) -> float:
        row = self._load(service_id)
        if row is None or row.status not in (service.DEPLOYING, *service.SERVING):
            return IDLE_POLL_S
        now_ms = self._now_ms()
        if row.status in service.SERVING and row.due_time is not None and now_ms >= row.due_time:
            with self.services.db.write() as session:
                current = session.get(Service, service_id)
                if current is not None and current.status in service.SERVING:
                    service.request_stop(current, now_ms, "The service stops when the auto stop time expires")
            return BUSY_POLL_S
        instances = self._match_instances(row)
        failure: str | None = None
        for instance in instances:
            problem = self._tend(row, instance)
            if problem is not None and row.status == service.DEPLOYING:
                failure = problem
        if failure is not None:
            self._fail(service_id, failure)
            return IDLE_POLL_S
        ready = sum(1 for i in self._instances(service_id) if i.ready)
        total = sum(entry["instance_count"] for entry in row.config)
        if row.status == service.DEPLOYING:
            timeout_s = max(
                [entry.get("deploy_timeout_in_seconds") or DEPLOY_TIMEOUT_S for entry in row.config], default=0
            )
            if ready >= total:
                self._transition(service_id, service.RUNNING, 100, "service is running")
                return IDLE_POLL_S
            if now_ms - row.deploy_started_at > timeout_s * 1000:
                self._fail(service_id, f"Service deployment timed out. Error: {ready} of {total} instances ready.")
                return IDLE_POLL_S
            self._set(service_id, progress=min(99, 10 + 90 * ready // max(total, 1)))
            return BUSY_POLL_S
        wanted = service.RUNNING if ready >= total else service.CONCERNING
        if wanted != row.status:
            info = "service is running" if wanted == service.RUNNING else f"{total - ready} instance(s) not ready"
            self._transition(service_id, wanted, 100, info, "normal" if wanted == service.RUNNING else "abnormal")
        wait = BUSY_POLL_S if ready < total else IDLE_POLL_S
        if row.due_time is not None:
            wait = min(wait, max(0.0, row.due_time / 1000 - self.services.clock.now()))
        return wait

    def _match_instances(self, row: Service) -> list[ServiceInstance]:
        """Instance rows matching the config: missing ones added, extra ones (an old config's) ended."""
        existing = self._instances(row.id)
        keep: list[ServiceInstance] = []
        extra: list[ServiceInstance] = []
        added: list[ServiceInstance] = []
        for index, entry in enumerate(row.config):
            mine = [i for i in existing if i.model_id == entry["model_id"]]
            keep += mine[: entry["instance_count"]]
            extra += mine[entry["instance_count"] :]
            for _ in range(entry["instance_count"] - len(mine)):
                added.append(
                    ServiceInstance(
                        id=f"{row.id[:8]}-{uuid.uuid4().hex[:12]}",
                        service_id=row.id,
                        model_id=entry["model_id"],
                        config_index=index,
                    )
                )
        configured = {entry["model_id"] for entry in row.config}
        extra += [i for i in existing if i.model_id not in configured]
        for instance in extra:
            self._end_instance(instance)
        if added or extra:
            with self.services.db.write(durable=False) as session:
                for instance in extra:
                    gone = session.get(ServiceInstance, instance.id)
                    if gone is not None:
                        session.delete(gone)
                for instance in added:
                    session.add(instance)
            added = [self._reload(i.id) or i for i in added]
        return keep + added

    def _tend(self, row: Service, instance: ServiceInstance) -> str | None:
        """Launch, watch and probe one instance; a message when it exited while deploying."""
        folder = self.folder(row.id) / instance.id
        if instance.pid is None or instance.process_start_time is None:
            found = self.executor.find(self._exit_file(instance)) if instance.launched_at is not None else None
            if found is not None:
                self._record(instance.id, pid=found.pid, process_start_time=found.start_time)
            else:
                self._launch(row, instance, folder)
            return None
        handle = ProcessHandle(instance.pid, instance.process_start_time)
        outcome = self.executor.outcome(handle, self._exit_file(instance))
        if outcome is not None:
            code = "no exit code" if outcome.exit_code is None else f"exit code {outcome.exit_code}"
            tail, _ = log_tail(folder / "instance.log", LOG_TAIL_BYTES)
            tail = "\n".join(tail.strip().splitlines()[-8:])
            message = f"instance {instance.id} of model {instance.model_id} exited ({code}):\n{tail}"
            self._record(
                instance.id,
                pid=None,
                process_start_time=None,
                port=None,
                ready=False,
                restarts=instance.restarts + 1,
                last_error=message,
            )
            self._event(row.id, message + ("" if row.status == service.DEPLOYING else "\nrestarting it"), "abnormal")
            if row.status == service.DEPLOYING:  # it never came up: the package is broken, not unlucky
                return message
            return None
        if instance.port is None:  # on a cluster node: the instance chose its port and wrote it down
            address = self._reported_address(handle, instance, folder)
            if address is None:
                return None
            self._record(instance.id, host=address[0], port=address[1])
            instance.host, instance.port = address
        if not instance.ready and probe(instance.host, instance.port):
            self._record(instance.id, ready=True)
        return None

    def _reported_address(
        self, handle: ProcessHandle, instance: ServiceInstance, folder: Path
    ) -> tuple[str, int] | None:
        """Where an instance on another machine listens: its node's address, and the port it reported."""
        port = self.files.reported_port(instance, folder)
        if port is None:
            return None
        host = self.executor.host_of(handle)
        return None if host is None else (host, port)

    def _launch(self, row: Service, instance: ServiceInstance, folder: Path) -> None:
        entry = next(e for e in row.config if e["model_id"] == instance.model_id)
        with self.services.db.read() as session:
            found = service.model_type_of(session, instance.model_id)
        if found is None:
            raise RuntimeError(f"model {instance.model_id} no longer exists")
        model_type, model_name = found
        folder.mkdir(parents=True, exist_ok=True)
        launched_at = self._now_ms()
        # The package where the instance will read it (maybe copied to the store for its node first); a
        # previous life's port cleared, so that the new one is not taken for it.
        package, staging = self.files.prepare(instance, launched_at, folder)
        # Here the port is chosen now; on a cluster node the instance takes a free one and reports it.
        port = free_port() if self._on_this_machine else 0
        # The launch first, the process after: a crash in between leaves a row launched without a pid, which
        # the next pass adopts (found by its exit file) or launches; never two.
        self._record(instance.id, port=port or None, launched_at=launched_at, ready=False)
        python = default_engine(self.services.settings).python
        argv = [
            python,
            str(SERVER_SCRIPT),
            "--model-dir",
            str(package),
            "--model-type",
            model_type,
            "--model-name",
            model_name,
            "--host",
            "127.0.0.1" if self._on_this_machine else "0.0.0.0",  # noqa: S104 - a cluster node's network
            "--port",
            str(port),
            "--port-file",
            str(folder / PORT_FILE),
        ]
        env = {**entry.get("envs", {}), "MODEL_NAME": model_name, "SERVICE_ID": row.id}
        spec = LaunchSpec(
            argv=argv,
            cwd=folder,
            env=env,
            log_path=folder / "instance.log",
            exit_path=self._exit_file(instance),
            staging=staging,
        )
        handle = self.executor.launch(spec)
        self._record(instance.id, pid=handle.pid, process_start_time=handle.start_time)
        if instance.restarts == 0:
            self._event(row.id, f"starting model {model_name} (instance {instance.id})")

    def _exit_file(self, instance: ServiceInstance) -> Path:
        return self.folder(instance.service_id) / instance.id / "exit-code"

    # --- stopping and deleting ------------------------------------------------------------------------------

    def _stopping(self, service_id: str) -> float:
        row = self._load(service_id)
        if row is None or row.status != service.STOPPING:
            return IDLE_POLL_S
        alive = [i for i in self._instances(service_id) if self._alive(i)]
        if alive:
            now_ms = self._now_ms()
            if row.stop_requested_at is None:
                for instance in alive:
                    self.executor.terminate(self._handle(instance))
                self._set(service_id, stop_requested_at=now_ms)
            elif now_ms - row.stop_requested_at > STOP_GRACE_S * 1000:
                for instance in alive:
                    self.executor.kill(self._handle(instance))
            return BUSY_POLL_S
        self._remove_instances(service_id)
        self._transition(service_id, service.STOPPED, 0, "The service has been stopped")
        return IDLE_POLL_S

    def _delete(self, service_id: str) -> None:
        for instance in self._instances(service_id):
            self._end_instance(instance)
        shutil.rmtree(self.folder(service_id), ignore_errors=True)
        self.files.forget(service_id)
        with self.services.db.write() as session:
            row = session.get(Service, service_id)
            if row is not None and row.status == service.DELETING:
                session.delete(row)
        TABLE.forget(service_id)
        log.info("service %s: deleted", service_id)

    def _fail(self, service_id: str, message: str) -> None:
        """The deploy failed: end every instance, record why."""
        for instance in self._instances(service_id):
            self._end_instance(instance)
        self._remove_instances(service_id)
        now_ms = self._now_ms()
        with self.services.db.write() as session:
            row = session.get(Service, service_id)
            if row is None or row.status not in (service.DEPLOYING, *service.SERVING):
                return
            row.status, row.error_msg, row.transition_at = service.FAILED, message.strip(), now_ms
            if row.logs and row.logs[-1]["result"] == "RUNNING":
                row.logs = [*row.logs[:-1], {**row.logs[-1], "result": "FAIL", "result_detail": message.strip()}]
            service.add_event(row, now_ms, message.strip(), "abnormal")
        TABLE.forget(service_id)
        log.info("service %s: failed: %s", service_id, message)

    def _end_instance(self, instance: ServiceInstance) -> None:
        if instance.pid is not None and instance.process_start_time is not None:
            self.executor.kill(self._handle(instance))
            self.executor.outcome(self._handle(instance), self._exit_file(instance))  # reaps it

    def _remove_instances(self, service_id: str) -> None:
        with self.services.db.write(durable=False) as session:
            for instance in session.scalars(select(ServiceInstance).where(ServiceInstance.service_id == service_id)):
                session.delete(instance)

    # --- routes and counts -------------------------------------------------------------------------------------

    def publish_routes(self) -> None:
        publish_routes(self.services)

    def flush_counts(self) -> None:
        flush_counts(self.services)

    # --- rows --------------------------------------------------------------------------------------------------

    def _alive(self, instance: ServiceInstance) -> bool:
        if instance.pid is None or instance.process_start_time is None:
            return False
        return self.executor.outcome(self._handle(instance), self._exit_file(instance)) is None

    @staticmethod
    def _handle(instance: ServiceInstance) -> ProcessHandle:
        assert instance.pid is not None and instance.process_start_time is not None
        return ProcessHandle(instance.pid, instance.process_start_time)

    def _load(self, service_id: str) -> Service | None:
        with self.services.db.read() as session:
            row = session.get(Service, service_id)
            if row is not None:
                session.expunge(row)
            return row

    def _reload(self, instance_id: str) -> ServiceInstance | None:
        with self.services.db.read() as session:
            row = session.get(ServiceInstance, instance_id)
            if row is not None:
                session.expunge(row)
            return row

    def _instances(self, service_id: str) -> list[ServiceInstance]:
        with self.services.db.read() as session:
            rows = list(
                session.scalars(
                    select(ServiceInstance)
                    .where(ServiceInstance.service_id == service_id)
                    .order_by(ServiceInstance.config_index, ServiceInstance.id)
                ).all()
            )
            for row in rows:
                session.expunge(row)
            return rows

    def _record(self, instance_id: str, **values: Any) -> None:
        with self.services.db.write(durable=False) as session:
            instance = session.get(ServiceInstance, instance_id)
            if instance is not None:
                for name, value in values.items():
                    setattr(instance, name, value)

    def _set(self, service_id: str, **values: Any) -> None:
        with self.services.db.write(durable=False) as session:
            row = session.get(Service, service_id)
            if row is not None:
                for name, value in values.items():
                    setattr(row, name, value)

    def _event(self, service_id: str, info: str, kind: str = "normal") -> None:
        with self.services.db.write(durable=False) as session:
            row = session.get(Service, service_id)
            if row is not None:
                service.add_event(row, self._now_ms(), info, kind)

    def _transition(self, service_id: str, status: str, progress: int, info: str, kind: str = "normal") -> None:
        now_ms = self._now_ms()
        with self.services.db.write() as session:
            row = session.get(Service, service_id)
            if row is None:
                return
            row.status, row.progress, row.transition_at = status, progress, now_ms
            if status == service.RUNNING:
                row.error_msg = ""
                if row.logs and row.logs[-1]["result"] == "RUNNING":
                    row.logs = [*row.logs[:-1], {**row.logs[-1], "result": "SUCCESS"}]
            if status == service.STOPPED:
                row.stop_requested_at = None
            service.add_event(row, now_ms, info, kind)
        log.info("service %s: %s", service_id, status)


def serving_routes(session: Session, service_ids: list[str] | None = None) -> list[Route]:
    """Routes from the rows: every ready instance of every serving service (or of the ones named)."""
    query = select(Service).where(Service.status.in_(service.SERVING))
    if service_ids is not None:
        query = query.where(Service.id.in_(service_ids))
    rows = session.scalars(query).all()
    instances = session.scalars(
        select(ServiceInstance).where(
            ServiceInstance.service_id.in_([r.id for r in rows]), ServiceInstance.ready.is_(True)
        )
    ).all()
    routes = []
    for row in rows:
        backends = [
            Backend(
                model_id=entry["model_id"],
                weight=int(entry["weight"]),
                addresses=sorted(
                    (i.host, i.port)
                    for i in instances
                    if i.service_id == row.id and i.model_id == entry["model_id"] and i.port is not None
                ),
            )
            for entry in row.config
        ]
        routes.append(Route(row.id, row.project_id, row.workspace_id, backends))
    return routes


def publish_routes(services: Services) -> None:
    """This server's routing table from the rows."""
    with services.db.read() as session:
        routes = serving_routes(session)
    TABLE.replace(routes)


def flush_counts(services: Services) -> None:
    """Fold this server's call tallies into the rows (additive: several servers may count at once)."""
    with TABLE.flushing:
        tallies = TABLE.drain()
        if not tallies:
            return
        try:
            with services.db.write(durable=False) as session:
                for service_id, per_model in tallies.items():
                    row = session.get(Service, service_id, with_for_update=True)
                    if row is None:
                        continue
                    counters = {model: list(pair) for model, pair in row.counters.items()}
                    for model_id, (calls, failures) in per_model.items():
                        pair = counters.setdefault(model_id, [0, 0])
                        pair[0] += calls
                        pair[1] += failures
                    session.execute(
                        update(Service)
                        .where(Service.id == service_id)
                        .values(
                            invocation_times=Service.invocation_times + sum(p[0] for p in per_model.values()),
                            failed_times=Service.failed_times + sum(p[1] for p in per_model.values()),
                            counters=counters,
                        )
                    )
        except Exception:
            TABLE.restore(tallies)
            raise


class RouteFollower:
    """Runs in every server, lease or not: inference calls reach any server behind a load balancer, so each
    keeps its own routing table in step with the rows and folds its own call counts into them."""

    FOLLOW_S = 0.5

    def __init__(self, services: Services) -> None:
        self.services = services
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        publish_routes(self.services)
        self._thread = threading.Thread(target=self._loop, name="service-routes", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        return  # it looks every FOLLOW_S anyway

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        flush_counts(self.services)

    def _loop(self) -> None:
        while not self._stop.wait(self.FOLLOW_S):
            try:
                publish_routes(self.services)
                flush_counts(self.services)
            except Exception:
                log.exception("service routes: refresh failed")


def make_route_follower(services: Services) -> RouteFollower:
    return RouteFollower(services)


def make_controller(services: Services) -> ServiceController:
    """Instances run on the configured executor when its nodes can read the model packages: in the data
    folder they share, or through the S3-compatible store (its private directory, OPENARTS_OBS_PRIVATE_URL);
    otherwise on this machine, where the gateway reaches them on 127.0.0.1."""
    settings = services.settings
    if settings.executor != "ray":
        return ServiceController(services, LocalExecutor(on_exit=service.wake_controller.set))
    if settings.ray_shared_fs:
        return ServiceController(services, make_executor(settings, service.wake_controller.set))
    from openarts.compute.ray_executor import private_url  # Ray's module only where Ray is the executor

    root = private_url(settings)
    if root is None or settings.obs_endpoint is None:
        log.warning(
            "service instances run on this machine, not on the Ray cluster: its nodes share no data folder "
            "(OPENARTS_RAY_SHARED_FS), and no private directory of the object store is set for the model "
            "packages (OPENARTS_OBS_PRIVATE_URL)"
        )
        return ServiceController(services, LocalExecutor(on_exit=service.wake_controller.set))
    files = StoredFiles(settings, ObjectStore(settings), root)
    return ServiceController(services, make_executor(settings, service.wake_controller.set), files)
