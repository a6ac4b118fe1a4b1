"""Where a service instance finds its model package, and how the controller learns the port it took.

Two ways, chosen by ``make_controller`` from where instances run (docs/operations.md, "Service instances"):

- ``SharedFiles``: the instance reads the published package in the server's data folder, and writes the
  port it bound into its instance folder, where the controller reads it. On this machine, and on Ray
  nodes that mount the data folder at the same path (``OPENARTS_RAY_SHARED_FS``).
- ``StoredFiles``: Ray nodes that share nothing with the server. The server copies the package once per
  service and model into its private directory of the S3-compatible store (``OPENARTS_OBS_PRIVATE_URL``),
  the node downloads it into the instance folder before the model server starts (``Staging.downloads``),
  and uploads the port file as soon as the model server has written it (``Staging.reports``), where the
  controller reads it. The service's directory there is removed with the service.

The command line is the same either way (``--model-dir``, ``--port-file``): only the folders differ.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

from openarts.compute.executor import Staging, Transfer
from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.models import service as models
from openarts.services.tables import ServiceInstance
from openarts.storage.paths import ObsPath
from openarts.storage.store import ObjectStore

log = logging.getLogger(__name__)

PORT_FILE = "port"
MODEL_FOLDER = "model"  # the staged package, inside the instance folder
TMP_FOLDER = "tmp"  # the instance folder is its working directory: TMPDIR is there (job_environment)
COPIED_MARKER = "copied"  # written after the package's last file: the copy is whole
REPORT_POLL_S = 0.5  # how often the store is asked for a port not reported yet (one request per instance)


class InstanceFiles(Protocol):
    def prepare(self, instance: ServiceInstance, launched_at: int, folder: Path) -> tuple[Path, Staging | None]:
        """Before the launch at ``launched_at``: the package folder the command names, and what the node
        stages, if anything. A previous life's port is cleared: it must never be taken for the new one's."""
        ...

    def reported_port(self, instance: ServiceInstance, folder: Path) -> int | None:
        """The port the instance's model server bound, once it has said so; None until then."""
        ...

    def forget(self, service_id: str) -> None:
        """The service is deleted: remove what was kept for it outside its folder."""
        ...


class SharedFiles:
    """The package in the data folder; the port in the instance folder (this machine, or a shared one)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def prepare(self, instance: ServiceInstance, launched_at: int, folder: Path) -> tuple[Path, Staging | None]:
        (folder / PORT_FILE).unlink(missing_ok=True)
        return models.package_dir(self.settings, instance.model_id), None

    def reported_port(self, instance: ServiceInstance, folder: Path) -> int | None:
        try:
            return int((folder / PORT_FILE).read_text())
        except (OSError, ValueError):  # not written yet (it is renamed into place whole)
            return None

    def forget(self, service_id: str) -> None:
        return  # nothing outside the service's folder


class StoredFiles:
    """The package and the port through the S3-compatible store, below ``root`` (the private directory)."""

    def __init__(self, settings: Settings, store: ObjectStore, root: ObsPath) -> None:
        self.settings = settings
        self.store = store
        self.root = root.as_dir()
        self._next_look: dict[str, float] = {}  # instance id: when to ask the store for its port again

    def service_dir(self, service_id: str) -> ObsPath:
        return self.root.child("services", is_dir=True).child(service_id, is_dir=True)

    def package_url(self, service_id: str, model_id: str) -> ObsPath:
        return self.service_dir(service_id).child("models", is_dir=True).child(model_id, is_dir=True)

    def report_url(self, instance: ServiceInstance, launched_at: int) -> ObsPath:
        # One object per launch: a port that a previous life uploaded late is never taken for the new one's.
        instances = self.service_dir(instance.service_id).child("instances", is_dir=True)
        return instances.child(instance.id, is_dir=True).child(f"{PORT_FILE}-{launched_at}")

    def prepare(self, instance: ServiceInstance, launched_at: int, folder: Path) -> tuple[Path, Staging | None]:
        package = self._copied_package(instance.service_id, instance.model_id)
        report = self.report_url(instance, launched_at)
        self.store.delete(report.parent)  # the previous lives' ports
        self._next_look.pop(instance.id, None)
        staging = Staging(
            root=folder,
            downloads=(Transfer(name="model", url=package.url(), path=MODEL_FOLDER),),
            reports=(Transfer(name=PORT_FILE, url=report.url(), path=PORT_FILE),),
            folders=(TMP_FOLDER,),  # the instance's TMPDIR: removed with the node's copy when it ends
        )
        return folder / MODEL_FOLDER, staging

    def reported_port(self, instance: ServiceInstance, folder: Path) -> int | None:
        if instance.launched_at is None:
            return None
        now = time.monotonic()
        if now < self._next_look.get(instance.id, 0.0):
            return None  # asked a moment ago: every controller pass would be a request otherwise
        self._next_look[instance.id] = now + REPORT_POLL_S
        url = self.report_url(instance, instance.launched_at)
        try:
            port = int(self.store.read_bytes(url).decode())
        except ApiError:  # not there yet
            return None
        except Exception as exc:  # the store briefly away, or a garbled object: asked again later
            log.warning("service instance %s: reading its port from %s failed: %s", instance.id, url.url(), exc)
            return None
        self._next_look.pop(instance.id, None)
        return port

    def forget(self, service_id: str) -> None:
        self.store.delete(self.service_dir(service_id))

    def _copied_package(self, service_id: str, model_id: str) -> ObsPath:
        """The model's package in the store, copied there now unless an earlier launch did (a published
        package never changes, so one whole copy serves every instance of the service)."""
        target = self.package_url(service_id, model_id)
        marker = target.parent.child(f"{model_id}.{COPIED_MARKER}")
        if self.store.exists(marker):
            return target
        started = time.monotonic()
        self.store.delete(target)  # a copy that a crash left half done
        self.store.upload(models.package_dir(self.settings, model_id), target)
        self.store.write_bytes(marker, b"")
        elapsed = time.monotonic() - started
        log.info("service %s: model %s copied to %s in %.1f s", service_id, model_id, target.url(), elapsed)
        return target
