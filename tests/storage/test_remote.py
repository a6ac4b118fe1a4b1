"""The store's remote (S3) code path.

A real S3 service cannot run here by default, so fsspec's in-memory file system stands in for it (it
has S3's "bucket/key" paths and no links). When the ``s3`` extra and moto are installed, the same tests
also run against moto's S3 server through s3fs, the real client.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage import ObjectInfo, ObjectStore, ObsPath, parse_obs_url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    pytest.importorskip("s3fs")
    server_module: Any = pytest.importorskip("moto.server")
    port = free_port()
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["memory", "s3"])
def remote(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[ObjectStore, str]]:
    """A store on a remote back end and a fresh bucket in it."""
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    if request.param == "memory":
        # fsspec ships no type information: import it untyped, as the store does.
        filesystem = importlib.import_module("fsspec").filesystem("memory", skip_instance_cache=True)
        filesystem.mkdir(bucket)
        store = ObjectStore(Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path)}), remote=filesystem)
        yield store, bucket
        filesystem.rm(bucket, recursive=True)
        return
    endpoint: str = request.getfixturevalue("moto_endpoint")
    env = {
        "OPENARTS_DATA_DIR": str(tmp_path),
        "OPENARTS_OBS_ENDPOINT": endpoint,
        "OPENARTS_OBS_ACCESS_KEY": "testing",
        "OPENARTS_OBS_SECRET_KEY": "testing",
    }
    store = ObjectStore(Settings.from_env(env))
    store._fs.mkdir(bucket)  # buckets are made outside the store on S3
    yield store, bucket


def test_round_trips(remote: tuple[ObjectStore, str], tmp_path: Path) -> None:
    store, bucket = remote
    assert not store.is_local
    root = parse_obs_url(f"/{bucket}/")
    store.write_bytes(root.child("dir").child("a.txt"), b"a")
    store.write_bytes(root.child("dir").child("sub").child("b.bin"), b"bb")
    assert store.read_bytes(parse_obs_url(f"obs://{bucket}/dir/a.txt")) == b"a"
    assert store.exists(parse_obs_url(f"/{bucket}/dir/")) and store.exists(parse_obs_url(f"/{bucket}/dir/a.txt"))
    assert not store.exists(parse_obs_url(f"/{bucket}/dir/missing"))
    assert store.list(parse_obs_url(f"/{bucket}/dir/")) == [
        ObjectInfo(ObsPath(bucket, "dir/a.txt"), 1, False),
        ObjectInfo(ObsPath(bucket, "dir/sub/"), 0, True),
    ]
    store.download(parse_obs_url(f"/{bucket}/dir/"), tmp_path / "down")
    assert (tmp_path / "down" / "sub" / "b.bin").read_bytes() == b"bb"
    store.delete(parse_obs_url(f"/{bucket}/dir/"))
    assert not store.exists(parse_obs_url(f"/{bucket}/dir/a.txt"))
    store.delete(parse_obs_url(f"/{bucket}/dir/"))  # idempotent


def test_upload_skips_links(remote: tuple[ObjectStore, str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store, bucket = remote
    source = tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "model.pkl").write_bytes(b"weights")
    (source / "sub" / "passwd").symlink_to("/etc/passwd")
    with caplog.at_level(logging.WARNING, logger="openarts.storage.store"):
        store.upload(source, parse_obs_url(f"/{bucket}/out/"))
    assert "passwd" in caplog.text
    assert [info.path.key for info in store.walk(parse_obs_url(f"/{bucket}/out/"))] == ["out/model.pkl"]


def test_hand_made_paths_are_refused(remote: tuple[ObjectStore, str]) -> None:
    store, bucket = remote
    for path in (ObsPath(bucket, "../other/x"), ObsPath(bucket.upper(), "x"), ObsPath(bucket, "a//b")):
        with pytest.raises(ApiError) as caught:
            store.write_bytes(path, b"x")
        assert caught.value.code == "ModelArts.2791"


def test_missing_paths_and_the_bucket_root(remote: tuple[ObjectStore, str]) -> None:
    store, bucket = remote
    root = parse_obs_url(f"obs://{bucket}")
    assert store.exists(root) and store.list(root) == []
    assert store.list(root.child("missing", is_dir=True)) == []
    with pytest.raises(ApiError) as caught:
        store.read_bytes(root.child("missing"))
    assert caught.value.code == "ModelArts.2791"
    store.write_bytes(root.child("a").child("b"), b"x")
    store.write_bytes(root.child("c"), b"x")
    with pytest.raises(ApiError):
        store.read_bytes(root.child("a"))  # a prefix, spelt as an object
    store.delete(root)
    assert store.exists(root) and store.list(root) == []


def test_a_missing_s3_client_is_a_clear_error(tmp_path: Path) -> None:
    if importlib.util.find_spec("s3fs") is not None:
        pytest.skip("s3fs is installed")
    settings = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path), "OPENARTS_OBS_ENDPOINT": "http://127.0.0.1:9"})
    with pytest.raises(RuntimeError, match=r"pip install openarts\[s3\]"):
        ObjectStore(settings)
