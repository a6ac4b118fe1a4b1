"""The inference runtime: what runs inside each service instance's process (``runtime/``), never in the
API server. ``runtime/`` is put on the model process's ``sys.path`` so that ModelArts inference code
(``from model_service.python_model_service import XgSklServingBaseService``...) runs unchanged."""

from __future__ import annotations

from pathlib import Path

RUNTIME_DIR = Path(__file__).resolve().parent / "runtime"
SERVER_SCRIPT = RUNTIME_DIR / "openarts_model_server.py"
