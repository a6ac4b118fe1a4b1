"""The local object store on real files: round trips, and a canary outside the root nobody may touch."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage import ObjectInfo, ObjectStore, ObsPath, parse_obs_url

CANARY = b"canary: must never be read, written or deleted"


@dataclass
class Env:
    store: ObjectStore
    root: Path  # settings.obs_root
    outside: Path  # a folder next to the data dir, holding the canary
    canary: Path

    def canary_intact(self) -> bool:
        return self.canary.read_bytes() == CANARY and sorted(os.listdir(self.outside)) == ["canary.txt"]


@pytest.fixture
def env(tmp_path: Path) -> Env:
    settings = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path / "data")})
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / "canary.txt"
    canary.write_bytes(CANARY)
    return Env(ObjectStore(settings), settings.obs_root, outside, canary)


def obs(value: str) -> ObsPath:
    return parse_obs_url(value)


def refused(action: Callable[[], object]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        action()
    assert (caught.value.status, caught.value.code) == (400, "ModelArts.2791")
    return caught.value


# --- round trips ------------------------------------------------------------------------------


def test_write_read_exists_list_delete(env: Env) -> None:
    store = env.store
    assert not store.exists(obs("/bucket/"))
    store.write_bytes(obs("/bucket/dir/sub/file.bin"), b"\x00\x01data")
    store.write_bytes(obs("obs://bucket/dir/top.txt"), b"top")
    assert store.read_bytes(obs("/bucket/dir/sub/file.bin")) == b"\x00\x01data"
    assert store.exists(obs("/bucket/")) and store.exists(obs("/bucket/dir/sub/"))
    assert store.exists(obs("/bucket/dir/top.txt"))
    # The spelling says what is asked for: a file path is not a folder and the reverse.
    assert not store.exists(obs("/bucket/dir")) and not store.exists(obs("/bucket/dir/top.txt/"))
    assert store.list(obs("/bucket/dir/")) == [
        ObjectInfo(obs("/bucket/dir/sub/"), 0, True),
        ObjectInfo(obs("/bucket/dir/top.txt"), 3, False),
    ]
    assert store.list(obs("/bucket/missing/")) == []
    store.delete(obs("/bucket/dir/top.txt"))
    assert not store.exists(obs("/bucket/dir/top.txt"))
    store.delete(obs("/bucket/dir/"))
    assert not store.exists(obs("/bucket/dir/sub/file.bin")) and store.list(obs("/bucket/")) == []
    store.delete(obs("/bucket/dir/"))  # idempotent
    assert store.exists(obs("/bucket/"))


def test_overwrite_and_unicode_keys(env: Env) -> None:
    path = obs("/bucket/数据/é (1).txt")
    env.store.write_bytes(path, b"one")
    env.store.write_bytes(path, b"two")
    assert env.store.read_bytes(path) == b"two"
    assert [info.path for info in env.store.list(obs("/bucket/数据/"))] == [path]


def test_kind_mismatches_and_missing_objects_are_2791(env: Env) -> None:
    store = env.store
    store.write_bytes(obs("/bucket/a/b"), b"x")
    refused(lambda: store.read_bytes(obs("/bucket/missing")))
    refused(lambda: store.read_bytes(obs("/bucket/a")))  # a folder, spelt as a file
    refused(lambda: store.read_bytes(obs("/bucket/a/")))
    refused(lambda: store.list(obs("/bucket/a/b")))
    refused(lambda: store.write_bytes(obs("/bucket/a/"), b"x"))
    refused(lambda: store.write_bytes(obs("/bucket/a"), b"x"))  # a folder is there
    refused(lambda: store.write_bytes(obs("/bucket/a/b/c"), b"x"))  # a file is where a folder should be
    refused(lambda: store.delete(obs("/bucket/a")))
    refused(lambda: store.delete(obs("/bucket/a/b/")))
    assert store.read_bytes(obs("/bucket/a/b")) == b"x"


def test_delete_of_the_bucket_root_empties_it(env: Env) -> None:
    env.store.write_bytes(obs("/bucket/a/b"), b"x")
    env.store.write_bytes(obs("/bucket/c"), b"x")
    env.store.delete(obs("/bucket/"))
    assert env.store.exists(obs("/bucket/")) and env.store.list(obs("/bucket/")) == []


def test_folders_are_private(env: Env) -> None:
    env.store.write_bytes(obs("/bucket/x"), b"x")
    for folder in (env.root, env.root / "bucket"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700


@pytest.mark.parametrize(
    "path", [ObsPath("bucket", "../outside/canary.txt"), ObsPath("Bucket", "x"), ObsPath("bucket", "/etc/passwd")]
)
def test_hand_made_paths_are_validated_again(env: Env, path: ObsPath) -> None:
    refused(lambda: env.store.read_bytes(path))
    refused(lambda: env.store.write_bytes(path, b"x"))
    refused(lambda: env.store.delete(path))
    assert env.canary_intact()


def make_tree(folder: Path) -> None:
    (folder / "sub" / "deeper").mkdir(parents=True)
    (folder / "empty").mkdir()
    (folder / "a.txt").write_text("a")
    (folder / "sub" / "b.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "sub" / "deeper" / "c d.txt").write_text("c")


def tree(folder: Path) -> dict[str, bytes | None]:
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


def test_upload_and_download_a_nested_folder(env: Env, tmp_path: Path) -> None:
    source = tmp_path / "source"
    make_tree(source)
    env.store.upload(source, obs("/bucket/code/"))
    assert [info.path.key for info in env.store.walk(obs("/bucket/code/"))] == [
        "code/a.txt",
        "code/empty/",
        "code/sub/",
        "code/sub/b.bin",
        "code/sub/deeper/",
        "code/sub/deeper/c d.txt",
    ]
    back = tmp_path / "back"
    env.store.download(obs("/bucket/code/"), back)
    assert tree(back) == tree(source)


def test_upload_and_download_single_files(env: Env, tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"weights")
    env.store.upload(tmp_path / "model.pkl", obs("/bucket/out/"))
    env.store.upload(tmp_path / "model.pkl", obs("/bucket/out/renamed.pkl"))
    env.store.upload(tmp_path / "model.pkl", obs("/bucket/folder"))  # a folder upload target, spelt as a file
    assert env.store.read_bytes(obs("/bucket/out/model.pkl")) == b"weights"
    assert env.store.read_bytes(obs("/bucket/out/renamed.pkl")) == b"weights"
    assert env.store.read_bytes(obs("/bucket/folder")) == b"weights"
    env.store.download(obs("/bucket/out/renamed.pkl"), tmp_path / "fetched")
    assert (tmp_path / "fetched" / "renamed.pkl").read_bytes() == b"weights"
    env.store.download_file(obs("/bucket/out/renamed.pkl"), tmp_path / "new" / "name.bin")
    assert (tmp_path / "new" / "name.bin").read_bytes() == b"weights"


def test_upload_of_a_folder_to_a_file_spelling_goes_under_it(env: Env, tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    env.store.upload(tmp_path / "src", obs("/bucket/code"))
    assert env.store.read_bytes(obs("/bucket/code/a.txt")) == b"a"


def test_upload_skips_links_fifos_and_unrepresentable_names(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "outputs"
    make_tree(source)
    (source / "passwd").symlink_to(env.canary)
    (source / "sub" / "escape").symlink_to(env.outside, target_is_directory=True)
    (source / "inside-link").symlink_to(source / "a.txt")
    os.mkfifo(source / "fifo")  # reading it would block the upload forever
    (source / "bad#name.txt").write_text("x")
    with caplog.at_level(logging.WARNING, logger="openarts.storage.store"):
        env.store.upload(source, obs("/bucket/out/"))
    keys = {info.path.key for info in env.store.walk(obs("/bucket/out/"))}
    assert keys == {
        "out/a.txt",
        "out/empty/",
        "out/sub/",
        "out/sub/b.bin",
        "out/sub/deeper/",
        "out/sub/deeper/c d.txt",
    }
    warned = caplog.text
    for name in ("passwd", "escape", "inside-link", "fifo", "bad#name.txt"):
        assert name in warned
    assert env.canary_intact()
    assert not any(CANARY in path.read_bytes() for path in env.root.rglob("*") if path.is_file())


def test_upload_refuses_a_source_that_is_itself_a_link(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "output-link").symlink_to(env.outside, target_is_directory=True)
    (tmp_path / "file-link").symlink_to(env.canary)
    with caplog.at_level(logging.WARNING, logger="openarts.storage.store"):
        env.store.upload(tmp_path / "output-link", obs("/bucket/out/"))
        env.store.upload(tmp_path / "file-link", obs("/bucket/out/"))
    assert env.store.list(obs("/bucket/out/")) == []
    assert "symbolic link" in caplog.text


# --- symlinks planted inside a bucket, and the sibling-prefix escape ---------------------------


def plant_links(env: Env) -> None:
    """A bucket with links out of it: to the canary, to its folder, and to a sibling bucket."""
    env.store.write_bytes(obs("/data/inside.txt"), b"fine")
    env.store.write_bytes(obs("/data-x/secret.txt"), b"secret of the sibling bucket")
    bucket = env.root / "data"
    (bucket / "canary-link").symlink_to(env.canary)
    (bucket / "outside-link").symlink_to(env.outside, target_is_directory=True)
    # Resolves to <root>/data-x/secret.txt, which a str.startswith(<root>/data) check would accept.
    (bucket / "sibling-link").symlink_to(env.root / "data-x" / "secret.txt")
    (bucket / "sibling-dir").symlink_to(env.root / "data-x", target_is_directory=True)
    (bucket / "loop").symlink_to(bucket / "loop")


LINKED = ["canary-link", "outside-link/canary.txt", "sibling-link", "sibling-dir/secret.txt", "loop"]
LINKED_DIRS = ["outside-link/", "sibling-dir/", "loop/"]


@pytest.mark.parametrize("key", LINKED)
def test_file_operations_through_planted_links_are_refused(env: Env, key: str) -> None:
    plant_links(env)
    path = obs(f"/data/{key}")
    refused(lambda: env.store.read_bytes(path))
    refused(lambda: env.store.write_bytes(path, b"overwritten"))
    refused(lambda: env.store.exists(path))
    refused(lambda: env.store.delete(path))
    refused(lambda: env.store.download(path, env.root.parent / "downloads"))
    refused(lambda: env.store.upload(env.canary, path))
    assert env.canary_intact()
    assert env.store.read_bytes(obs("/data-x/secret.txt")) == b"secret of the sibling bucket"


@pytest.mark.parametrize("key", LINKED_DIRS)
def test_folder_operations_through_planted_links_are_refused(env: Env, key: str, tmp_path: Path) -> None:
    plant_links(env)
    path = obs(f"/data/{key}")
    source = tmp_path / "src"
    make_tree(source)
    refused(lambda: env.store.list(path))
    refused(lambda: env.store.delete(path))
    refused(lambda: env.store.download(path, tmp_path / "downloads"))
    refused(lambda: env.store.upload(source, path))
    refused(lambda: env.store.write_bytes(path.child("new.txt"), b"x"))
    assert env.canary_intact()
    assert sorted(os.listdir(env.root / "data-x")) == ["secret.txt"]


def test_listing_and_tree_copies_skip_planted_links(env: Env, tmp_path: Path) -> None:
    plant_links(env)
    assert [info.path.key for info in env.store.list(obs("/data/"))] == ["inside.txt"]
    env.store.download(obs("/data/"), tmp_path / "downloads")
    assert tree(tmp_path / "downloads") == {"inside.txt": b"fine"}
    (env.root / "data" / "sub").mkdir()
    (env.root / "data" / "sub" / "escape").symlink_to(env.outside, target_is_directory=True)
    env.store.delete(obs("/data/sub/"))  # rmtree removes the link inside, not what it points to
    assert env.canary_intact()
    env.store.delete(obs("/data/"))  # empties the bucket: the links go, their targets stay
    assert os.listdir(env.root / "data") == []
    assert env.canary_intact()
    assert env.store.read_bytes(obs("/data-x/secret.txt")) == b"secret of the sibling bucket"


def test_a_bucket_folder_replaced_by_a_link_is_refused(env: Env) -> None:
    (env.root).mkdir(parents=True)
    (env.root / "data").symlink_to(env.outside, target_is_directory=True)
    refused(lambda: env.store.read_bytes(obs("/data/canary.txt")))
    refused(lambda: env.store.list(obs("/data/")))
    refused(lambda: env.store.delete(obs("/data/")))
    refused(lambda: env.store.write_bytes(obs("/data/canary.txt"), b"x"))
    assert env.canary_intact()


# --- downloads never create anything outside the download folder -----------------------------


def test_download_does_not_follow_links_in_the_destination(env: Env, tmp_path: Path) -> None:
    env.store.write_bytes(obs("/bucket/sub/x.txt"), b"payload")
    env.store.write_bytes(obs("/bucket/canary.txt"), b"payload")
    target = tmp_path / "target"
    target.mkdir()
    (target / "sub").symlink_to(env.outside, target_is_directory=True)
    refused(lambda: env.store.download(obs("/bucket/"), target))
    (target / "sub").unlink()
    (target / "canary.txt").unlink()  # the download stopped at the link, after writing this one
    (target / "canary.txt").symlink_to(env.canary)
    refused(lambda: env.store.download(obs("/bucket/canary.txt"), target))
    refused(lambda: env.store.download_file(obs("/bucket/canary.txt"), target / "canary.txt"))
    assert env.canary_intact()


def test_the_local_path_lies_in_the_bucket_folder(env: Env) -> None:
    local = env.store.local_path(obs("/data/a/b.txt"))
    assert local == env.root.resolve() / "data" / "a" / "b.txt"
    assert not local.is_relative_to(env.root.resolve() / "data-x")
