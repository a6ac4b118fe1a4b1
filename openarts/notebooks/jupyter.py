"""The Jupyter server of a notebook instance: how it is started, probed, watched and cleaned up. No database.

Each running instance is one JupyterLab server process, started through the compute executor with the argv
and environment from :func:`server_command`. It listens on ``127.0.0.1:<port>`` only, under the base URL
``/authoring/<instance_id>/``; users reach it through the OpenArts server's reverse proxy
(:mod:`openarts.notebooks.proxy`), which checks the instance token before anything is forwarded. Jupyter's
own token check and XSRF protection stay on behind the proxy.

Everything an instance's Jupyter keeps on disk lives under its ``state_dir`` (see :func:`state_dirs`): the
runtime dir (cookie secret, server info, kernel connection files), config, data, IPython profile, HOME and
TMPDIR. No two instances share a cookie secret or a connection file, and the runtime dir doubles as the mark
by which :func:`sweep` finds an instance's processes.

Starting (what a controller does):

1. ``port = free_port()``, ``token = new_token()`` (or the instance's stored token);
2. ``argv, env = server_command(python, instance_id=..., port=..., token=..., work_dir=..., state_dir=...)``,
   launched with ``LaunchSpec(argv=argv, env=env, cwd=state_dir, ...)``: the executor makes a ``tmp`` folder
   in the cwd, which belongs in the state dir, not in the user's work dir (the server itself moves into the
   work dir as it starts, and its TMPDIR is the state dir's ``tmp``);
3. poll :func:`probe` (or call :func:`wait_answering`) until it answers, then record RUNNING.
   A port taken between ``free_port`` and Jupyter's bind makes Jupyter exit at once (``port_retries=0``):
   start again with a fresh port.

Stopping cleanly:

1. SIGTERM the runner's process group (``Executor.terminate``). Jupyter traps it, asks every kernel to shut
   down (``shutdown_request``, then kills a kernel that does not go within ``KernelManager.shutdown_wait_time``,
   5 s), closes its terminals and exits;
2. wait up to :data:`STOP_GRACE_S` for the group to be gone, then ``Executor.kill`` (SIGKILL) it;
3. always :func:`sweep` the state dir afterwards. Kernels and terminals run in sessions of their own (so the
   group signal never reaches them); after a SIGKILLed or crashed server they, and anything a user started
   from them in the background, would live on. ipykernel exits by itself about a second after its parent
   dies, but a kernel stuck in C code, its children and terminal jobs do not.

The same sweep belongs in a controller's start-up reconciliation for every instance that is not running.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psutil

AUTHORING_PREFIX = "/authoring/"
# How long a SIGTERMed Jupyter gets to shut its kernels down (5 s each, in parallel) and exit before the
# controller SIGKILLs the group.
STOP_GRACE_S = 10.0

# An instance id reaches Jupyter's command line and URLs: platform-made ids (UUIDs) only.
_INSTANCE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

# What the server process runs instead of ``python -m jupyterlab``: the same ``main``, minus two costs that
# together are about two thirds of JupyterLab's start-up and buy a notebook server nothing.
# - jsonschema imports ``rfc3987_syntax`` (when installed, as jupyter-events' dependencies make sure it is)
#   only to check the "iri" string format, which no Jupyter event schema uses; importing it compiles an Earley
#   grammar, about 1.5 s. A None entry in sys.modules turns that import into a cheap ImportError, which
#   jsonschema tolerates (the format is then not checked).
# - importing jupyterlab.labapp computes the app version through ``yarn config`` (a node process, ~0.4 s) to
#   learn the npm registry, which only matters for building extensions. While labapp is imported, ``node``
#   is reported missing, which jupyterlab handles as "no yarn config"; afterwards lookups work as before.
# Both are guarded: if a later JupyterLab moves things, the server starts as ``python -m jupyterlab`` would.
# It also moves into the root dir first: a terminal opened from the file browser's top folder starts in the
# server's working directory, which should be the user's work dir, not wherever the executor started it.
_BOOTSTRAP = """\
import os, sys
for _arg in sys.argv[1:]:
    if _arg.startswith("--ServerApp.root_dir="):
        try:
            os.chdir(_arg.partition("=")[2])
        except OSError:
            pass
sys.modules.setdefault("rfc3987_syntax", None)
_hide_node = [True]
try:
    import jupyterlab_server.process as _process
    _which = _process.which
    def _which_while_importing(command, env=None):
        if _hide_node[0] and command in ("node", "nodejs"):
            raise ValueError("node is not looked up while JupyterLab starts")
        return _which(command, env)
    _process.which = _which_while_importing
except Exception:
    pass
from jupyterlab.labapp import main
_hide_node[0] = False
sys.exit(main())
"""


def base_url(instance_id: str) -> str:
    """The URL prefix Jupyter serves under, on its own port and through the proxy."""
    return f"{AUTHORING_PREFIX}{instance_id}/"


def lab_url(public_base: str, instance_id: str) -> str:
    """The instance's ``url`` field: JupyterLab through the OpenArts server (``public_base`` has no path)."""
    return public_base.rstrip("/") + base_url(instance_id) + "lab"


def valid_instance_id(instance_id: str) -> bool:
    return _INSTANCE_ID.fullmatch(instance_id) is not None


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel picks it; Jupyter binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def new_token() -> str:
    """A fresh instance token: UUID-shaped like ModelArts' tokens, 122 random bits from os.urandom."""
    return str(uuid.uuid4())


@dataclass(frozen=True)
class StateDirs:
    """Where one instance's Jupyter keeps its state (all under the instance's state dir)."""

    root: Path
    runtime: Path  # JUPYTER_RUNTIME_DIR: cookie secret, jpserver-<pid>.json, kernel-<id>.json files
    config: Path  # JUPYTER_CONFIG_DIR: lab user settings and workspaces
    data: Path  # JUPYTER_DATA_DIR
    ipython: Path  # IPYTHONDIR: the kernels' profile and history
    home: Path  # HOME of the server, its kernels and terminals
    tmp: Path  # TMPDIR


def state_dirs(state_dir: Path) -> StateDirs:
    # Absolute and normalised: the runtime path is matched textually against other processes' environment
    # and command lines by ``sweep``.
    root = Path(os.path.abspath(state_dir))
    return StateDirs(
        root=root,
        runtime=root / "runtime",
        config=root / "config",
        data=root / "data",
        ipython=root / "ipython",
        home=root / "home",
        tmp=root / "tmp",
    )


def server_command(
    python: str,
    *,
    instance_id: str,
    port: int,
    token: str,
    work_dir: Path,
    state_dir: Path,
) -> tuple[list[str], dict[str, str]]:
    """The argv and environment of the instance's JupyterLab server; creates the state folders.

    ``python`` is the interpreter with jupyterlab and ipykernel installed (kernels run under it too).
    The argv is a list for direct execution, never a shell string. The token travels in the environment
    (``JUPYTER_TOKEN``), never on the command line, which any local user can read with ``ps``.
    """
    if not valid_instance_id(instance_id):
        raise ValueError(f"invalid instance id {instance_id!r}")
    if not 0 < port < 65536:
        raise ValueError(f"invalid port {port}")
    if not token or any(ch.isspace() for ch in token):
        raise ValueError("the token must be a non-empty string without whitespace")
    dirs = state_dirs(state_dir)
    for folder in (dirs.root, dirs.runtime, dirs.config, dirs.data, dirs.ipython, dirs.home, dirs.tmp):
        # Private: the runtime dir holds the cookie secret; jupyter refuses a group/world-readable one.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    argv = [
        python,
        "-P",  # the server's cwd is not put on sys.path: no file of the instance shadows what Jupyter imports
        "-c",
        _BOOTSTRAP,
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",  # never reachable from outside but through the proxy
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",  # the platform chose this port: fail rather than silently take another
        f"--ServerApp.base_url={base_url(instance_id)}",
        f"--ServerApp.root_dir={Path(os.path.abspath(work_dir))}",
        # Behind the proxy. The proxy forwards the browser's own Host and Origin headers unchanged, so Jupyter
        # sees exactly what it would see if it were exposed directly: its Origin-equals-Host check on
        # WebSockets and cookie-authenticated requests, its Referer check and its absolute URLs all work as
        # usual. Its Host check (a DNS-rebinding guard for token-less servers listening on localhost) would
        # refuse every non-local host name the OpenArts server is reached by, hence allow_remote_access;
        # the server still binds 127.0.0.1 only and every request needs the token. trust_xheaders makes it
        # log the client's address and scheme from the proxy's X-Forwarded-For/-Proto instead of 127.0.0.1.
        "--ServerApp.allow_remote_access=True",
        "--ServerApp.trust_xheaders=True",
        # The platform starts and stops the server; File > Shut Down would look like a crash to the controller.
        "--ServerApp.quit_button=False",
        "--ServerApp.use_redirect_file=False",  # a local HTML file with the token in it, for a local browser
        # Start-up cost with no use here: the language-server bridge (needs language servers installed) and
        # the classic notebook's config shim (no classic notebook is served).
        "--ServerApp.jpserver_extensions=jupyter_lsp=False",
        "--ServerApp.jpserver_extensions=notebook_shim=False",
        # No calls out to the internet: the extension manager's PyPI listing, the news feed, the update check.
        "--LabApp.extension_manager=readonly",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if os.geteuid() == 0:
        # Jupyter refuses to run as root unless told to; the server runs as whoever runs OpenArts.
        argv.append("--ServerApp.allow_root=True")
    env = {
        "JUPYTER_TOKEN": token,
        "JUPYTER_RUNTIME_DIR": str(dirs.runtime),
        "JUPYTER_CONFIG_DIR": str(dirs.config),
        "JUPYTER_DATA_DIR": str(dirs.data),
        "IPYTHONDIR": str(dirs.ipython),
        "JUPYTER_PLATFORM_DIRS": "1",  # the future default; without it jupyter_core warns on every start
        "HOME": str(dirs.home),
        "TMPDIR": str(dirs.tmp),
        # Terminals open the user's shell; the executor's minimal environment has no SHELL.
        "SHELL": shutil.which("bash") or "/bin/sh",
    }
    return argv, env


# --- asking the server ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Activity:
    last_activity: datetime  # timezone-aware (UTC): the last kernel, terminal or API activity Jupyter saw
    kernels: int
    connections: int  # open kernel WebSocket connections (browser tabs attached to kernels)


def _status(port: int, instance_id: str, token: str, timeout_s: float) -> dict[str, object] | None:
    """Jupyter's ``api/status`` document, or None if it does not answer 200 with JSON.

    That endpoint does not count as activity (Jupyter marks it so), so polling it never keeps an IDLE lease
    alive.
    """
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        connection.request("GET", base_url(instance_id) + "api/status", headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        body = response.read(65536)
        if response.status != 200:
            return None
        document = json.loads(body)
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        connection.close()
    return document if isinstance(document, dict) else None


def probe(port: int, instance_id: str, token: str, timeout_s: float = 1.0) -> bool:
    """Whether the instance's Jupyter answers an authenticated request."""
    return _status(port, instance_id, token, timeout_s) is not None


def wait_answering(
    port: int,
    instance_id: str,
    token: str,
    timeout_s: float,
    *,
    alive: Callable[[], bool] | None = None,
    interval_s: float = 0.05,
) -> bool:
    """Poll :func:`probe` until it answers (True) or ``timeout_s`` passes or ``alive()`` says the process is
    gone (False). The interval is short: Jupyter answers well under a second after it starts."""
    deadline = time.monotonic() + timeout_s
    while True:
        if probe(port, instance_id, token, timeout_s=min(1.0, max(0.1, deadline - time.monotonic()))):
            return True
        if (alive is not None and not alive()) or time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


def activity(port: int, instance_id: str, token: str, timeout_s: float = 2.0) -> Activity | None:
    """What Jupyter reports about its own activity (for IDLE leases); None if it does not answer."""
    document = _status(port, instance_id, token, timeout_s)
    if document is None:
        return None
    try:
        last = datetime.fromisoformat(str(document["last_activity"]))
        kernels = int(str(document.get("kernels", 0)))
        connections = int(str(document.get("connections", 0)))
    except (KeyError, ValueError):
        return None
    if last.tzinfo is None:  # Jupyter writes UTC with a "Z"; should a version ever drop it, it is still UTC
        last = last.replace(tzinfo=UTC)
    return Activity(last_activity=last, kernels=kernels, connections=connections)


# --- cleaning up ----------------------------------------------------------------------------------------


def instance_processes(state_dir: Path) -> list[psutil.Process]:
    """Live processes that belong to the instance whose state lives in ``state_dir``.

    A process belongs to it when its environment has this instance's ``JUPYTER_RUNTIME_DIR`` (the server,
    and everything it starts inherits it: kernels, terminals, a user's background jobs) or when its command
    line names a file in the runtime dir (a kernel's ``-f .../runtime/kernel-<id>.json``, even if user code
    rewrote its environment). Paths are compared whole, so ``/x/a/runtime`` never matches ``/x/a-2/runtime``
    nor ``/y/x/a/runtime``: another instance's processes are never listed.
    """
    runtime = str(state_dirs(state_dir).runtime)
    inside = runtime + os.sep
    me = os.getpid()
    found: list[psutil.Process] = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        if process.pid == me or process.info.get("status") == psutil.STATUS_ZOMBIE:
            continue
        cmdline: list[str] = process.info.get("cmdline") or []
        if any(arg.startswith(inside) or ("=" + inside) in arg for arg in cmdline):
            found.append(process)
            continue
        try:
            environ = process.environ()
        except (psutil.Error, OSError):  # gone, or another user's process we may not read: not ours
            continue
        if environ.get("JUPYTER_RUNTIME_DIR") == runtime:
            found.append(process)
    return found


def sweep(state_dir: Path, wait_s: float = 3.0) -> int:
    """SIGKILL every leftover process of the instance (see :func:`instance_processes`); how many were killed.

    Waits up to ``wait_s`` for them to be gone, so a restart right after does not meet them. Safe to call at
    any time for an instance that should not be running; it never signals another instance's processes.
    """
    victims = instance_processes(state_dir)
    killed: list[psutil.Process] = []
    for process in victims:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            process.send_signal(signal.SIGKILL)  # psutil checks pid reuse (create time) before signalling
            killed.append(process)
    if killed and wait_s > 0:
        psutil.wait_procs(killed, timeout=wait_s)
    return len(killed)
