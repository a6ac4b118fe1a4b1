"""Local engines: the Python environments a training job's code can run in.

ModelArts' engines are container images; here an engine is an interpreter. The default is the server's
own (``sys.executable``); operators register more with ``OPENARTS_ENGINES``, a JSON object
``{"engine name": "/path/to/python"}``. A registered interpreter is asked for its version once, which also
proves that it runs; one that doesn't is skipped with a warning, so a typo never takes the server down.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openarts.config import Settings

log = logging.getLogger("openarts.compute")

_VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


@dataclass(frozen=True)
class Engine:
    engine_id: str
    engine_name: str
    engine_version: str
    python: str  # the interpreter that runs the job's boot file

    def to_wire(self) -> dict[str, Any]:
        """The ModelArts engine object (reference B.5); there are no images, so the image fields are empty."""
        return {
            "engine_id": self.engine_id,
            "engine_name": self.engine_name,
            "engine_version": self.engine_version,
            "v1_compatible": False,
            "run_user": "",
            "image_info": {"cpu_image_url": "", "gpu_image_url": "", "image_version": ""},
        }


def default_engine(settings: Settings) -> Engine:
    """The server's own interpreter: always present, and it has whatever the server was installed with."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    return Engine(
        engine_id=f"python{version}-local", engine_name="Python", engine_version=version, python=sys.executable
    )


def catalogue(settings: Settings) -> list[Engine]:
    """The default engine first, then the registered ones that pass validation, in configuration order."""
    engines = [default_engine(settings)]
    for name, python in _registered(settings.extra_engines).items():
        engine = _extra_engine(name, python)
        if engine is None:
            continue
        if any(known.engine_id == engine.engine_id for known in engines):
            log.warning("engine %r skipped: its id %s is already taken", name, engine.engine_id)
            continue
        engines.append(engine)
    return engines


def find_engine(
    settings: Settings,
    *,
    engine_id: str | None = None,
    engine_name: str | None = None,
    engine_version: str | None = None,
) -> Engine | None:
    """The first engine matching every criterion given; None when nothing matches or nothing is given.

    Names compare without case ("pytorch" finds "PyTorch"), ids and versions exactly.
    """
    if engine_id is None and engine_name is None and engine_version is None:
        return None
    for engine in catalogue(settings):
        if engine_id is not None and engine.engine_id != engine_id:
            continue
        if engine_name is not None and engine.engine_name.casefold() != engine_name.casefold():
            continue
        if engine_version is not None and engine.engine_version != engine_version:
            continue
        return engine
    return None


def _registered(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    try:
        parsed = json.loads(raw)
    except ValueError as exc:
        log.warning("OPENARTS_ENGINES ignored: not JSON (%s)", exc)
        return {}
    if not isinstance(parsed, dict):
        log.warning("OPENARTS_ENGINES ignored: expected a JSON object {name: interpreter path}")
        return {}
    engines: dict[str, str] = {}
    for name, python in parsed.items():
        if not isinstance(python, str) or not name.strip():
            log.warning("engine %r skipped: expected a non-empty name and an interpreter path", name)
            continue
        engines[name.strip()] = python
    return engines


def _extra_engine(name: str, python: str) -> Engine | None:
    path = Path(python)
    if not path.is_absolute() or not path.is_file() or not os.access(path, os.X_OK):
        log.warning("engine %r skipped: %s is not an executable file (an absolute path is required)", name, python)
        return None
    try:
        mtime_ns = path.stat().st_mtime_ns
    except OSError:
        return None
    version = _python_version(str(path), mtime_ns)
    if version is None:
        log.warning("engine %r skipped: %s did not report a Python version", name, python)
        return None
    slug = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "engine"
    return Engine(engine_id=f"{slug}-python{version}-local", engine_name=name, engine_version=version, python=str(path))


@functools.lru_cache(maxsize=64)
def _python_version(python: str, mtime_ns: int) -> str | None:
    """Runs the interpreter once per (path, modification time): listing engines must not fork each time."""
    del mtime_ns  # only part of the cache key: a replaced interpreter is asked again
    try:
        done = subprocess.run(  # noqa: S603 - an argv list naming an operator-configured interpreter
            [python, "-I", "-c", _VERSION_PROBE],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
            env={"PATH": os.environ.get("PATH", os.defpath), "LANG": "C.UTF-8"},
        )
    except (OSError, subprocess.SubprocessError):
        return None
    version = done.stdout.strip()
    return version if done.returncode == 0 and re.fullmatch(r"\d+\.\d+", version) else None
