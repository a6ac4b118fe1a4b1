"""The object store: buckets in a local folder, or an S3-compatible service, behind one interface.

Both back ends are fsspec file systems, so one code path serves them. What differs is where a path
lands: locally ``obs://bucket/a/b`` is the file ``<obs_root>/bucket/a/b``, and that mapping is where the
defences live (``reference/security-reliability.md``):

* every :class:`ObsPath` is re-validated against the grammar before use;
* the local path is built from the parsed segments only, then ``resolve()``d and checked **by path
  components** to lie inside the bucket folder (``Path.is_relative_to``, never ``str.startswith``), and
  to be exactly the path that was built, so a symbolic link anywhere below the storage root (pointing out
  of the bucket or not) is refused rather than followed;
* listings and tree copies skip links, and name only entries that the grammar accepts;
* uploads read the local source tree through ``os.fwalk`` and ``O_NOFOLLOW`` file descriptors, so a link
  planted in a job's output folder (say to ``/etc/passwd``) is skipped with a warning, not copied, even
  if it is swapped in while the walk runs;
* downloads check every destination against the resolved download folder before creating anything, and
  open files with ``O_NOFOLLOW``.

A remaining window: between the check of a storage path and its use, a process that can write inside the
storage root could swap a folder for a link. The root is 0700, so only processes of the server's own user
can, and those can already read whatever the server can.
"""

from __future__ import annotations

import importlib
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage.paths import ObsPath, invalid_obs_path, segment_problem, validate

log = logging.getLogger(__name__)

_PRIVATE_DIR_MODE = 0o700
_COPY_CHUNK = 1024 * 1024
# Open flags for reading a file of an upload's source tree: never through a link, never blocking on a
# FIFO a job left behind (the file type is checked right after the open).
_SOURCE_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_DEST_OPEN_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class ObjectInfo:
    path: ObsPath
    size: int  # 0 for directories
    is_dir: bool


def not_found(path: ObsPath) -> ApiError:
    """A path with nothing behind it: a 2791 too, as a job with a missing input is refused at create."""
    return invalid_obs_path(f"{path.url()} does not exist.")


class ObjectStore:
    """Object storage on ``settings.obs_root``, or on S3 when ``settings.obs_endpoint`` is set.

    Every method takes a parsed :class:`ObsPath` and refuses (``ModelArts.2791``) paths outside the
    grammar, paths that lead through a link, and operations that do not fit the path's kind (a file
    operation on a directory path and the reverse). Unexpected I/O failures (a full disk, permissions)
    propagate as ``OSError``.
    """

    def __init__(self, settings: Settings, *, remote: Any = None) -> None:
        """``remote``: an fsspec file system to use as the remote store instead of s3fs, for tests
        where no S3 service can run (fsspec's memory file system stands in for it)."""
        # fsspec ships no type information, hence Any. It is imported here, not at the top, so that
        # importing this module (the CLI does on every command) stays cheap.
        self._fs: Any
        self._root: Path | None
        if remote is not None or settings.obs_endpoint:
            self._fs = remote if remote is not None else _s3_filesystem(settings)
            self._root = None
        else:
            self._fs = importlib.import_module("fsspec").filesystem("file")
            # Resolved once: every mapped path is compared with paths built on this root, so replacing
            # the root (or a bucket folder) by a link later makes every access refuse.
            self._root = settings.obs_root.resolve()

    @property
    def is_local(self) -> bool:
        return self._root is not None

    # --- queries -----------------------------------------------------------------------------

    def exists(self, path: ObsPath) -> bool:
        """Whether a directory (for a directory path) or a file (for a file path) is there."""
        kind = self._kind(path)
        return kind == ("dir" if path.is_dir else "file")

    def list(self, path: ObsPath) -> list[ObjectInfo]:
        """The direct children of a directory path, sorted by key; ``[]`` when the directory is absent."""
        if not path.is_dir:
            raise invalid_obs_path(f"{path.url()} is not a directory path (end it with '/').")
        if self._kind(path) != "dir":
            return []
        location = self._location(path)
        children: list[ObjectInfo] = []
        for entry in self._fs.ls(location, detail=True):
            info = self._entry_info(path, location, entry)
            if info is not None:
                children.append(info)
        return sorted(children, key=lambda info: info.path.key)

    def local_path(self, path: ObsPath) -> Path:
        """Where ``path`` lives on this machine (local store only), after every containment check."""
        if self._root is None:
            raise RuntimeError("local_path() needs the local object store; this one is on S3")
        return self._local_path(validate(path))

    # --- single objects ------------------------------------------------------------------------

    def read_bytes(self, path: ObsPath) -> bytes:
        self._require_file(path)
        return cast(bytes, self._fs.cat_file(self._location(path)))

    def write_bytes(self, path: ObsPath, data: bytes) -> None:
        """Write one object, creating its bucket (locally) and parent directories."""
        target = self._writable_file(path)
        with _conflicts_as_errors(path):
            self._fs.pipe_file(target, data)

    # --- trees ------------------------------------------------------------------------------------

    def download(self, path: ObsPath, local_dir: Path) -> None:
        """A directory path: its whole tree into ``local_dir``; a file path: to ``local_dir/<name>``.

        Nothing is created outside ``local_dir``: a link already inside it that leads elsewhere makes
        the download refuse (2791) before that entry is written. ``local_dir`` itself may be a link: the
        caller chose it.
        """
        if not path.is_dir:
            self._require_file(path)
            local_dir.mkdir(parents=True, exist_ok=True)
            self._copy_out(path, _local_target(local_dir.resolve(), (path.name,)))
            return
        if self._kind(path) != "dir":
            raise not_found(path)
        local_dir.mkdir(parents=True, exist_ok=True)
        root = local_dir.resolve()
        for info in self.walk(path):
            relative = info.path.segments[len(path.segments) :]
            target = _local_target(root, relative)
            if info.is_dir:
                target.mkdir(exist_ok=True)
            else:
                self._copy_out(info.path, target)

    def download_file(self, path: ObsPath, local_file: Path) -> None:
        """Copy one object to ``local_file`` (the CLI's ``cp obs://b/f ./name``); parents are created."""
        self._require_file(path)
        parent = local_file.parent
        parent.mkdir(parents=True, exist_ok=True)
        self._copy_out(path, _local_target(parent.resolve(), (local_file.name,)))

    def upload(self, local: Path, path: ObsPath) -> None:
        """A local folder: its whole tree under the directory path; a local file: to ``path``.

        A file uploaded to a directory path lands at ``path/<name>``; a folder uploaded to a file path
        goes under that path as a directory. Links, devices, FIFOs and names outside the grammar found in
        the source are skipped with a warning; ``local`` itself must not be a link.
        """
        validate(path)
        try:
            mode = os.lstat(local).st_mode
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{local} does not exist") from exc
        if stat.S_ISLNK(mode):
            log.warning("not uploading %s: it is a symbolic link", local)
        elif stat.S_ISDIR(mode):
            self._upload_tree(local, path.as_dir())
        elif stat.S_ISREG(mode):
            target = path.child(local.name) if path.is_dir else path
            self._upload_file(os.open(local, _SOURCE_OPEN_FLAGS), str(local), target)
        else:
            log.warning("not uploading %s: not a regular file or folder", local)

    def delete(self, path: ObsPath) -> None:
        """Delete a file, or a directory recursively; a missing path is not an error (idempotent).

        Deleting the bucket root empties the bucket and keeps it.
        """
        kind = self._kind(path)
        if kind is None:
            return
        if kind == "dir" and not path.is_dir:
            raise invalid_obs_path(f"{path.url()} is a directory: end it with '/' to delete the directory.")
        if kind == "file" and path.is_dir:
            raise invalid_obs_path(f"{path.url()} is a file: remove the trailing '/'.")
        if path.key == "":
            self._empty_bucket(path)
        elif kind == "dir":
            self._fs.rm(self._location(path), recursive=True)
        else:
            self._fs.rm_file(self._location(path))

    def _empty_bucket(self, path: ObsPath) -> None:
        # Every entry goes, also links and names outside the grammar that a listing would skip; a link is
        # removed itself, never followed (rmtree does not follow the links inside the folders either).
        for entry in self._fs.ls(self._location(path), detail=False):
            if self._root is not None and os.path.islink(entry):
                os.unlink(entry)
            else:
                self._fs.rm(entry, recursive=True)

    def walk(self, path: ObsPath) -> Iterator[ObjectInfo]:
        """Every directory and file below a directory path, parents before their children."""
        pending = [path]
        while pending:  # a loop, not recursion: keys may nest a few hundred levels deep
            for info in self.list(pending.pop()):
                yield info
                if info.is_dir:
                    pending.append(info.path)

    # --- the mapping --------------------------------------------------------------------------------

    def _location(self, path: ObsPath) -> str:
        """The fsspec path for ``path``, after validation and (locally) the containment checks."""
        validate(path)
        if self._root is None:
            # s3fs wants "bucket/key" without a trailing slash, also for prefixes.
            return f"{path.bucket}/{path.key}".rstrip("/")
        return str(self._local_path(path))

    def _local_path(self, path: ObsPath) -> Path:
        assert self._root is not None
        bucket_dir = self._root / path.bucket
        target = bucket_dir.joinpath(*path.segments)
        try:
            resolved = target.resolve()
        except (OSError, RuntimeError) as exc:  # a link loop, or a component that cannot be read
            raise invalid_obs_path(f"{path.url()} cannot be resolved in the local store.") from exc
        if not resolved.is_relative_to(bucket_dir):
            raise invalid_obs_path(f"{path.url()} leads outside its bucket.")
        if resolved != target:
            raise invalid_obs_path(f"{path.url()} leads through a symbolic link, which the store does not follow.")
        return target

    def _kind(self, path: ObsPath) -> str | None:
        """What is stored at ``path``, whatever its spelling: ``"file"``, ``"dir"``, ``None`` (nothing) or
        ``"other"`` (a FIFO, socket or device someone made in a bucket folder by hand)."""
        location = self._location(path)
        if self._root is None and path.is_dir:
            # On S3 an object "a" and a prefix "a/" can coexist: a directory path asks for the prefix.
            return "dir" if self._fs.isdir(location) else None
        try:
            info = self._fs.info(location)
        except (FileNotFoundError, NotADirectoryError):
            return None
        kind = info.get("type")
        return {"directory": "dir", "file": "file"}.get(str(kind), "other")

    def _require_file(self, path: ObsPath) -> None:
        if path.is_dir:
            raise invalid_obs_path(f"{path.url()} is a directory path, not an object.")
        kind = self._kind(path)
        if kind == "dir":
            raise invalid_obs_path(f"{path.url()} is a directory: end it with '/'.")
        if kind == "other":
            raise invalid_obs_path(f"{path.url()} is not a regular file.")
        if kind != "file":
            raise not_found(path)

    def _writable_file(self, path: ObsPath) -> str:
        """Validate a file path for writing and create its bucket and parent directories."""
        if path.is_dir:
            raise invalid_obs_path(f"{path.url()} is a directory path, not an object.")
        self._makedirs(path.parent)
        kind = self._kind(path)
        if kind == "dir":
            raise invalid_obs_path(f"{path.url()} is a directory.")
        if kind == "other":  # opening a FIFO for writing would block
            raise invalid_obs_path(f"{path.url()} is not a regular file.")
        return self._location(path)

    def _makedirs(self, path: ObsPath) -> None:
        """Create a directory path (locally; S3 has no directories, and its buckets are made outside)."""
        if self._root is None:
            validate(path)
            return
        _make_private_dir(self._root)
        _make_private_dir(self._root / path.bucket)
        with _conflicts_as_errors(path):
            self._fs.makedirs(self._location(path), exist_ok=True)

    def _entry_info(self, parent: ObsPath, location: str, entry: dict[str, Any]) -> ObjectInfo | None:
        """The child ``entry`` of an fsspec listing as an :class:`ObjectInfo`, or ``None`` to skip it."""
        name = str(entry["name"]).rstrip("/").rpartition("/")[2]
        if str(entry["name"]).rstrip("/") == location.rstrip("/"):
            return None  # some S3 services list a directory's own marker object
        if entry.get("islink"):
            log.warning("skipping %s%s: symbolic links in a bucket are not objects", parent.url(), name)
            return None
        kind = entry.get("type")
        if kind not in ("file", "directory"):
            return None
        problem = segment_problem(name)
        if problem:
            log.warning("skipping %r in %s: %s", name, parent.url(), problem)
            return None
        is_dir = kind == "directory"
        try:
            child = parent.child(name, is_dir=is_dir)
        except ApiError as exc:  # the key as a whole is too long
            log.warning("skipping %r in %s: %s", name, parent.url(), exc.message)
            return None
        return ObjectInfo(child, 0 if is_dir else int(entry.get("size") or 0), is_dir)

    # --- copies -----------------------------------------------------------------------------------

    def _copy_out(self, path: ObsPath, target: Path) -> None:
        """Copy one object to a local file, never through a link at ``target``."""
        with self._fs.open(self._location(path), "rb") as source:
            fd = os.open(target, _DEST_OPEN_FLAGS, 0o666)
            with os.fdopen(fd, "wb") as sink:
                shutil.copyfileobj(cast(IO[bytes], source), sink, _COPY_CHUNK)

    def _upload_file(self, fd: int, shown: str, target: ObsPath) -> None:
        """Copy the open regular file ``fd`` to ``target`` (closes ``fd``)."""
        with os.fdopen(fd, "rb") as source:
            if not stat.S_ISREG(os.fstat(source.fileno()).st_mode):
                log.warning("not uploading %s: not a regular file", shown)
                return
            os.set_blocking(source.fileno(), True)
            location = self._writable_file(target)
            with _conflicts_as_errors(target), self._fs.open(location, "wb") as sink:
                shutil.copyfileobj(source, cast(IO[bytes], sink), _COPY_CHUNK)

    def _upload_tree(self, local: Path, path: ObsPath) -> None:
        # os.fwalk holds a descriptor per folder and checks each one it enters is the folder it listed,
        # so a folder swapped for a link during the walk is not followed.
        self._makedirs(path)
        targets: dict[str, ObsPath] = {str(local): path}
        for folder, dirnames, filenames, dir_fd in os.fwalk(local, follow_symlinks=False, onerror=_unreadable):
            base = targets.pop(folder)
            for name in list(dirnames):
                dirnames.remove(name)
                target = _upload_target(base, name, folder, dir_fd, is_dir=True)
                if target is not None:
                    self._makedirs(target)
                    targets[os.path.join(folder, name)] = target
                    dirnames.append(name)
            for name in filenames:
                target = _upload_target(base, name, folder, dir_fd, is_dir=False)
                if target is None:
                    continue
                try:
                    fd = os.open(name, _SOURCE_OPEN_FLAGS, dir_fd=dir_fd)
                except OSError as exc:  # ELOOP: a link swapped in after the listing
                    log.warning("not uploading %s: %s", os.path.join(folder, name), exc.strerror)
                    continue
                self._upload_file(fd, os.path.join(folder, name), target)


@contextmanager
def _conflicts_as_errors(path: ObsPath) -> Iterator[None]:
    """Turn the local file system's file-versus-folder clashes into a 2791 for ``path``.

    S3 keys ``a`` and ``a/b`` may coexist; a folder cannot hold both a file ``a`` and a folder ``a``.
    """
    try:
        yield
    except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
        raise invalid_obs_path(f"{path.url()} clashes with an existing file or directory.") from exc


def _upload_target(base: ObsPath, name: str, folder: str, dir_fd: int, *, is_dir: bool) -> ObsPath | None:
    """Where the entry ``name`` of a source folder goes, or ``None`` (with a warning) to skip it."""
    shown = os.path.join(folder, name)
    try:
        mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None  # removed while we walked
    if stat.S_ISLNK(mode):
        log.warning("not uploading %s: it is a symbolic link", shown)
        return None
    if not (stat.S_ISDIR(mode) if is_dir else stat.S_ISREG(mode)):
        log.warning("not uploading %s: not a regular file or folder", shown)
        return None
    problem = segment_problem(name)
    if problem:
        log.warning("not uploading %s: the name cannot be an OBS key (%s)", shown, problem)
        return None
    try:
        return base.child(name, is_dir=is_dir)
    except ApiError as exc:  # the key as a whole would be too long
        log.warning("not uploading %s: %s", shown, exc.message)
        return None


def _unreadable(error: OSError) -> None:
    log.warning("not uploading %s: %s", error.filename, error.strerror)


def _local_target(root: Path, relative: tuple[str, ...]) -> Path:
    """``root/relative`` for a download, refused if a link already there would lead out of ``root``."""
    target = root.joinpath(*relative)
    if not target.resolve().is_relative_to(root):
        raise invalid_obs_path(f"{target} would be written outside {root}.")
    return target


def _make_private_dir(path: Path) -> None:
    """Create ``path`` and any missing parent readable by their owner only (0700).

    A folder that already exists is left as it is: its mode is its owner's choice.
    """
    if path.is_dir():
        return
    _make_private_dir(path.parent)
    try:
        path.mkdir(mode=_PRIVATE_DIR_MODE)
    except FileExistsError:
        return  # created concurrently by another process: fine
    os.chmod(path, _PRIVATE_DIR_MODE)  # mkdir's mode is filtered by the umask


def _s3_filesystem(settings: Settings) -> Any:
    try:
        s3fs = importlib.import_module("s3fs")
    except ImportError as exc:
        raise RuntimeError(
            "OPENARTS_OBS_ENDPOINT is set, but the S3 client is not installed: pip install openarts[s3]"
        ) from exc
    return s3fs.S3FileSystem(
        key=settings.obs_access_key,
        secret=settings.obs_secret_key,
        client_kwargs={"endpoint_url": settings.obs_endpoint},
        # No listing cache: the CLI and the server are separate processes writing the same buckets.
        use_listings_cache=False,
        skip_instance_cache=True,
    )
