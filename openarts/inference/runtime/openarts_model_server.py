"""One service instance: loads a ModelArts model package and answers HTTP (on 127.0.0.1 on the server's
machine, on the node's network on a Ray node).

Started by the services controller through the compute executor, with the model's Python, as
``python openarts_model_server.py --model-dir DIR --model-type TYPE --model-name NAME [--host H] --port P``.
It imports nothing of OpenArts: this folder (on ``sys.path`` as the script's own) provides the
``model_service`` base classes, the model folder provides ``customize_service.py`` and its helpers.

- ``GET /health``: ``{"status": "OK"}`` once the model is loaded (the controller's readiness probe).
- ``POST <any path>``: the hooks ``_preprocess`` -> ``_inference`` -> ``_postprocess``. JSON bodies reach
  Scikit_Learn/XGBoost services as the raw text and other services as the parsed object; multipart bodies
  as ``{field: {file_name: BytesIO}}``. The request is checked against the JSON schema of ``apis[0]``
  in config.json first. Errors use the runtime's envelope ``{"erno", "msg"}``: 400 for bad input
  (``PY.0101``/``MR.0101``) and for ``KeyError``/``TypeError`` in the hooks (``PY.0105``/``MR.0105``),
  500 for any other exception. NumPy arrays and torch tensors left in a result are sent as lists.
- The model file given to Scikit_Learn/XGBoost/PyTorch classes is the one file of ``model/`` with the type's
  suffix (``MODEL_FILE_SUFFIXES``); the default Scikit_Learn/XGBoost service loads it before ``/health``
  answers, so a file it cannot read fails the deploy.

HTTP/1.1 with keep-alive, one thread per connection: the gateway keeps a pool of connections open.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import io
import json
import os
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# The base classes, from this folder's model_service package (on sys.path as the script's own folder). Imported
# by name at run time: the package is found there, not as part of OpenArts.
SingleNodeService: Any = importlib.import_module("model_service.model_service").SingleNodeService
XgSklServingBaseService: Any = importlib.import_module("model_service.python_model_service").XgSklServingBaseService
PTServingBaseService: Any = importlib.import_module("model_service.pytorch_model_service").PTServingBaseService

ML_TYPES = ("Scikit_Learn", "XGBoost")
# As openarts/models/package.py's (the package check at publish); config.json is never a model file.
MODEL_FILE_SUFFIXES = {
    "Scikit_Learn": (".m", ".pkl", ".joblib"),
    "XGBoost": (".m", ".model", ".ubj", ".pkl", ".joblib", ".json"),
    "PyTorch": (".pt", ".pth", ".pt2"),
}
NOT_MODEL_FILES = ("config.json",)
MAX_BODY = 12 * 1024 * 1024


def model_file(model_dir: Path, model_type: str) -> Path | None:
    """The package's one model file of its engine (the package check made sure there is exactly one)."""
    suffixes = MODEL_FILE_SUFFIXES.get(model_type)
    if suffixes is None:
        return None
    for suffix in suffixes:
        found = sorted(
            p for p in model_dir.iterdir() if p.is_file() and p.suffix == suffix and p.name not in NOT_MODEL_FILES
        )
        if found:
            return found[0]
    return None


def user_class(module: Any) -> Any:
    """The one class of ``customize_service.py`` derived from a base class with no subclass of its own."""
    candidates = [
        value
        for value in vars(module).values()
        if inspect.isclass(value) and issubclass(value, SingleNodeService) and value.__module__ == module.__name__
    ]
    leaves = [c for c in candidates if not any(o is not c and issubclass(o, c) for o in candidates)]
    if len(leaves) != 1:
        names = ", ".join(c.__name__ for c in leaves) or "none"
        raise RuntimeError(
            f"customize_service.py must define exactly one inference class derived from a model_service base "
            f"class; found {names}"
        )
    return leaves[0]


def load_service(model_dir: Path, model_type: str, model_name: str) -> Any:
    sys.path.insert(0, str(model_dir))  # helper modules next to customize_service.py are importable
    path = model_file(model_dir, model_type)
    script = model_dir / "customize_service.py"
    if not script.is_file():
        if model_type in ML_TYPES:
            service = XgSklServingBaseService(str(path))
            service._load()  # before /health answers: a file it cannot read fails the deploy, not each call
            return service
        raise RuntimeError(f"{model_type} models need model/customize_service.py")
    spec = importlib.util.spec_from_file_location("customize_service", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["customize_service"] = module
    spec.loader.exec_module(module)
    cls = user_class(module)
    if issubclass(cls, XgSklServingBaseService):
        return cls(str(path))
    if issubclass(cls, PTServingBaseService):
        return cls(model_name, str(path) if path else str(model_dir))
    return cls(model_name, str(model_dir))


def request_schema(model_dir: Path) -> Callable[[Any], str | None] | None:
    """A checker for the JSON request schema of config.json's first API, if it has a usable one."""
    try:
        config = json.loads((model_dir / "config.json").read_text())
        apis = config.get("apis") or []
        request = apis[0].get("request", {}) if apis else {}
        content_type = str(request.get("Content-type") or request.get("Content-Type") or "application/json")
        schema = request.get("data")
        if not isinstance(schema, dict) or "json" not in content_type:
            return None
        import jsonschema  # type: ignore[import-untyped]

        validator_class = jsonschema.validators.validator_for(schema)
        validator_class.check_schema(schema)
        validator = validator_class(schema)
    except Exception:
        return None  # a schema with ModelArts' tolerated typos checks nothing rather than everything

    def check(document: Any) -> str | None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(document))
        if error is None:
            return None
        where = "/".join(str(part) for part in error.absolute_path) or "body"
        return f"{where}: {error.message}"

    return check


def multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    if not message.is_multipart():
        raise ValueError("the multipart body could not be parsed")
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        raw = part.get_payload(decode=True)
        payload = raw if isinstance(raw, bytes) else b""
        filename = part.get_filename()
        if filename:
            fields.setdefault(name, {})[filename] = io.BytesIO(payload)
        else:
            fields[name] = payload.decode("utf-8", errors="replace")
    return fields


class Runtime:
    def __init__(self, service: Any, model_type: str, check: Callable[[Any], str | None] | None):
        self.service = service
        self.ml = isinstance(service, XgSklServingBaseService)
        self.check = check
        prefix = "PY" if self.ml else "MR"
        self.bad_input, self.failed = f"{prefix}.0101", f"{prefix}.0105"

    def answer(self, content_type: str, body: bytes) -> tuple[int, Any]:
        meta = None
        if "multipart/form-data" in content_type:
            try:
                data: Any = multipart(content_type, body)
            except Exception as exc:
                return 400, {"erno": self.bad_input, "msg": "The input parameter is invalid", "error_info": str(exc)}
        else:
            try:
                parsed = json.loads(body or b"null")
            except ValueError as exc:
                return 400, {"erno": self.bad_input, "msg": "Input data is invalid", "error_info": str(exc)}
            if self.check is not None:
                problem = self.check(parsed)
                if problem is not None:
                    return 400, {"erno": self.bad_input, "msg": "Input data is invalid", "error_info": problem}
            meta = parsed.get("meta") if isinstance(parsed, dict) else None
            data = body.decode("utf-8", errors="replace") if self.ml else parsed
        try:
            result = self.service.inference(data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            return 400, {"erno": self.failed, "msg": "Inference failed", "error_info": _describe(exc)}
        except Exception as exc:
            return 500, {"erno": self.failed, "msg": "Inference failed", "error_info": _describe(exc)}
        if self.ml:
            result = {"data": {"resp_data": result}}
            if meta is not None:
                result["meta"] = meta
        return 200, result


def _jsonable(value: Any) -> Any:
    """NumPy arrays and scalars and torch tensors in a hook's result, as JSON lists and numbers."""
    if callable(getattr(value, "tolist", None)):
        if callable(getattr(value, "detach", None)):
            value = value.detach().cpu()
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _describe(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip()


def handler_class(runtime: Runtime) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses its connections
        # Buffered (flushed after each request by the base class): the status line, headers and body leave
        # in one write, and TCP_NODELAY: without both, Nagle's algorithm and delayed ACKs add 40 ms a call.
        wbufsize = 64 * 1024

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per request would cost more than the request; errors are logged below

        def _send(self, status: int, payload: Any) -> None:
            try:
                data = json.dumps(payload, default=_jsonable).encode()
            except (TypeError, ValueError) as exc:
                status = 500
                data = json.dumps({"erno": runtime.failed, "msg": f"The result is not JSON: {exc}"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.split("?", 1)[0] == "/health":
                self._send(200, {"status": "OK"})
            else:
                self._send(404, {"erno": "MR.0104", "msg": "Only POST is served here; GET /health for health"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                self._send(413, {"erno": runtime.bad_input, "msg": "Request entity too large"})
                return
            body = self.rfile.read(length) if length else b""
            status, payload = runtime.answer(self.headers.get("Content-Type") or "application/json", body)
            if status >= 500:
                print(f"inference failed: {payload.get('error_info')}", file=sys.stderr, flush=True)
            self._send(status, payload)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True, type=Path)
    parser.add_argument("--model-type", required=True)
    parser.add_argument("--model-name", default="model")
    # 127.0.0.1 on the server's machine; on a cluster node every interface, with port 0 (any free one),
    # written to --port-file once bound, where the controller reads it.
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--port-file", type=Path)
    args = parser.parse_args(argv)
    model_dir: Path = args.model_dir.resolve()
    os.chdir(model_dir)
    service = load_service(model_dir, args.model_type, args.model_name)
    runtime = Runtime(service, args.model_type, request_schema(model_dir))
    server = ThreadingHTTPServer((args.host, args.port), handler_class(runtime))
    server.daemon_threads = True
    port = server.server_address[1]
    if args.port_file is not None:  # written whole, then renamed: a reader never sees half a number
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(str(port))
        partial.replace(args.port_file)
    print(f"model {args.model_name} ({args.model_type}) serving on {args.host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        threading.Thread(target=server.server_close, daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
