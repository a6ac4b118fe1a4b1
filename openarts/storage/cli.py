"""``openarts obs cp`` and ``openarts obs ls``: move code, data and outputs in and out of object storage.

The CLI works on the same store as the server (``OPENARTS_DATA_DIR``/obs, or the S3 endpoint), so what
it writes is visible to a running server at once: there is no state besides the files.

An argument containing ``://`` is an object path and must be ``obs://bucket/...``; anything else is a
local path. (``/bucket/dir/`` is an ``obs_url`` in API bodies, but on a command line it would be
ambiguous with local absolute paths.)
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage.paths import ObsPath, parse_obs_url

if TYPE_CHECKING:
    from openarts.storage.store import ObjectStore

obs_app = typer.Typer(no_args_is_help=True, help="Copy files to and from object storage, and list it.")


@obs_app.command("cp")
def cp(
    src: Annotated[str, typer.Argument(help="A local file or folder, or obs://bucket/path.")],
    dst: Annotated[str, typer.Argument(help="A local path, or obs://bucket/path.")],
) -> None:
    """Copy SRC to DST. Folders copy recursively: a folder's contents go into the destination folder.

    A file copied to a folder (or to a path ending in '/') keeps its name.

    Symbolic links in a local source folder are skipped with a warning.
    """
    _run(lambda: _copy(src, dst))


@obs_app.command("ls")
def ls(url: Annotated[str, typer.Argument(help="obs://bucket/path (a folder lists its direct children).")]) -> None:
    """List a folder (one line per entry: size and key; folders end in '/'), or show one object."""
    _run(lambda: _list(url))


def _copy(src: str, dst: str) -> None:
    source, target = _as_obs(src), _as_obs(dst)
    store = _store()
    if source is None:
        if target is None:
            _fail("one side must be an object path (obs://bucket/path); use cp for local copies")
        store.upload(_existing(Path(src)), target)
    elif target is None:
        _download(store, _existing_object(store, source), Path(dst), into=dst.endswith(os.sep))
    else:
        # Through a local folder: the same code paths, and their checks, as every other copy.
        source = _existing_object(store, source)
        with tempfile.TemporaryDirectory(prefix="openarts-obs-") as staging:
            store.download(source, Path(staging))
            store.upload(Path(staging) if source.is_dir else Path(staging) / source.name, target)


def _download(store: ObjectStore, source: ObsPath, local: Path, *, into: bool) -> None:
    """A folder into ``local``; a file into ``local`` when it is a folder (or spelt as one), else as it."""
    if source.is_dir or into or local.is_dir():
        store.download(source, local)
    else:
        store.download_file(source, local)


def _list(url: str) -> None:
    path = parse_obs_url(url)
    store = _store()
    if not path.is_dir and store.exists(path):
        # One object: show it as its folder's listing would.
        entries = [info for info in store.list(path.parent) if info.path == path]
    else:
        folder = path.as_dir()
        if not store.exists(folder):
            _fail(f"{folder.url()} does not exist")
        entries = store.list(folder)
    for info in entries:
        typer.echo(f"{info.size:>12}  {info.path.key}")


def _existing_object(store: ObjectStore, path: ObsPath) -> ObsPath:
    """``path``, or its directory spelling when only a folder is there (``cp obs://b/dir ./x``)."""
    if store.exists(path):
        return path
    if not path.is_dir and store.exists(path.as_dir()):
        return path.as_dir()
    _fail(f"{path.url()} does not exist")


def _existing(path: Path) -> Path:
    if not path.exists() and not path.is_symlink():
        _fail(f"{path} does not exist")
    return path


def _as_obs(argument: str) -> ObsPath | None:
    return parse_obs_url(argument) if "://" in argument else None


def _store() -> ObjectStore:
    from openarts.storage.store import ObjectStore  # fsspec is imported only by commands that need it

    return ObjectStore(Settings.from_env())


def _run(action: Callable[[], None]) -> None:
    """Run a command: warnings (skipped links) to stderr, errors as one line on stderr and exit code 1."""
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    try:
        action()
    except typer.Exit:
        raise  # already reported (click's Exit is a RuntimeError, so it must pass first)
    except ApiError as exc:
        _fail(f"{exc.message} ({exc.code})")
    except (OSError, RuntimeError, ValueError) as exc:
        _fail(str(exc))


def _fail(message: str) -> NoReturn:
    # typer.echo, not rich: a path may contain "[...]", which rich would read as markup.
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=1)
