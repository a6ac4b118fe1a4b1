"""The model controller: publishes ``publishing`` models (copy the package, check it, record the outcome).

Asynchronous as on ModelArts: create answers at once and the model turns ``published`` or ``failed``
(with the reason in its events and ``failed_reason``). A restart finds ``publishing`` rows and publishes
them again from the start: the copy is redone into a fresh folder, so a half-copied package never counts.
"""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from pathlib import Path

from sqlalchemy import select

from openarts.core.clock import to_ms
from openarts.core.errors import ApiError
from openarts.core.services import Services
from openarts.models import package, service
from openarts.models.tables import Model
from openarts.storage.paths import parse_obs_url
from openarts.storage.store import ObjectStore

log = logging.getLogger(__name__)
IDLE_POLL_S = 5.0


class ModelController:
    def __init__(self, services: Services, store: ObjectStore) -> None:
        self.services = services
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="model-controller", daemon=True)
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
            try:
                self.reconcile()
            except Exception:
                log.exception("model controller pass failed")
            service.wake_controller.wait(IDLE_POLL_S)

    def reconcile(self) -> None:
        with self.services.db.read() as session:
            pending = session.scalars(select(Model.id).where(Model.status == service.PUBLISHING)).all()
        for model_id in pending:
            try:
                self.publish(model_id)
            except Exception as exc:  # one bad package never stops the others
                log.exception("model %s: publishing failed", model_id)
                self._finish(model_id, None, 0, f"internal error: {exc}")

    def publish(self, model_id: str) -> None:
        with self.services.db.read() as session:
            model = session.get(Model, model_id)
            if model is None or model.status != service.PUBLISHING:
                return
            session.expunge(model)
        target = service.package_dir(self.services.settings, model_id)
        staging = target.parent / f".staging-{uuid.uuid4().hex[:8]}"
        try:
            config, size = self._import(model, staging)
        except (package.PackageError, ApiError) as exc:
            shutil.rmtree(staging, ignore_errors=True)
            reason = exc.message if isinstance(exc, ApiError) else str(exc)
            self._finish(model_id, None, 0, reason)
            return
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        self._finish(model_id, config, size, None)

    def _import(self, model: Model, staging: Path) -> tuple[dict[str, object], int]:
        """Check config.json in the store, copy ``model/`` into ``staging`` and check its files."""
        source = parse_obs_url(model.source_location).child("model", is_dir=True)
        if not self.store.exists(source):
            raise package.PackageError(f"{source.url()} does not exist: source_location must hold a model/ folder.")
        config_path = source.child("config.json")
        if not self.store.exists(config_path):
            raise package.PackageError(f"{config_path.url()} does not exist: every model needs model/config.json.")
        config = package.parse_config(self.store.read_bytes(config_path))
        initial = model.request.get("initial_config")
        if initial:  # the request's config wins over the package's (reference 2.2, precedence)
            config = {**config, **package.parse_config(str(initial).encode(), "initial_config")}
        model_type = model.model_type or package.canonical_type(str(config.get("model_type") or "")) or ""
        if not model_type:
            raise package.PackageError("model_type is neither in the request nor in config.json.")
        package.require_served(model_type)
        self.store.download(source, staging)
        size = package.check_model_dir(staging, model_type)
        config["model_type"] = model_type
        return config, size

    def _finish(self, model_id: str, config: dict[str, object] | None, size: int, reason: str | None) -> None:
        now_ms = to_ms(self.services.clock.now())
        with self.services.db.write() as session:
            model = session.get(Model, model_id)
            if model is None or model.status != service.PUBLISHING:
                if model is None:  # deleted meanwhile: its copy goes too
                    shutil.rmtree(service.models_dir(self.services.settings) / model_id, ignore_errors=True)
                return
            events = list(model.events)
            if reason is None:
                assert config is not None
                model.status, model.config, model.model_size = service.PUBLISHED, config, size
                model.model_type = str(config["model_type"])
                model.runtime = model.runtime or str(config.get("runtime") or "")
                events += [service_event(now_ms, "Model file imported"), service_event(now_ms, "Model size calculated")]
            else:
                model.status, model.failure_reason = service.FAILED, reason
                events.append(service_event(now_ms, f"Failed to import the model: {reason}", "abnormal"))
            model.events = events
        log.info("model %s: %s", model_id, "published" if reason is None else f"failed: {reason}")


def service_event(now_ms: int, info: str, kind: str = "normal") -> dict[str, object]:
    return {"occur_time": now_ms, "event_type": kind, "event_info": info}


def make_controller(services: Services) -> ModelController:
    return ModelController(services, ObjectStore(services.settings))
