"""The obs_url grammar: the hostile inputs of security-reliability.md are refused, good paths parse."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openarts.config import Settings
from openarts.core.errors import ApiError
from openarts.storage.paths import ObsPath, parse_obs_url
from openarts.storage.store import ObjectStore

HOSTILE = [
    # traversal, plain and with backslashes
    "/bucket/../x",
    "/bucket/a/../../x",
    "obs://bucket/../x",
    "obs://bucket/./x",
    "/bucket/a/..",
    "/bucket/..\\x",
    "obs://bucket/..\\..\\etc\\passwd",
    "/bucket/C:\\x",
    # encoded and double-encoded separators: never decoded, and '%' is refused
    "/bucket/%2e%2e%2fetc",
    "/bucket/%2e%2e/x",
    "/bucket/%252e%252e%252f",
    "/bucket/a%2fb",
    # empty segments
    "/bucket//x",
    "/bucket/a//",
    "obs://bucket//",
    # fragment, parameters, query, NUL and control characters
    "/bucket/a#b",
    "/bucket/a;b",
    "/bucket/a?b",
    "/bucket/a\x00b",
    "/bucket/a\x00/../../etc",
    "/bucket/a\nb",
    "/bucket/a\tb",
    "/bucket/a\x7fb",
    # other schemes, scheme-less hosts, absolute-looking values
    "file:///etc/",
    "file:///etc/passwd",
    "http://x/",
    "https://bucket.obs.example.com/x",
    "s3://other/",
    "//host/p",
    "obs:///etc/passwd",
    "obs:/bucket/x",
    "OBS://bucket/x",
    "bucket/x",
    " /bucket/x",
    "",
    "/",
    "obs://",
    # unicode look-alikes of dots and slashes, invisible and direction characters, lone surrogates
    "/bucket/\u2024\u2024/x",
    "/bucket/\uff0e\uff0e/x",
    "/bucket/\u3002",
    "/bucket/a\u2215b",
    "/bucket/a\uff0fb",
    "/bucket/a\u2044b",
    "/bucket/a\uff3cb",
    "/bucket/\u00bd",
    "/bucket/\u0140",
    "/bucket/a\u200bb",
    "/bucket/a\u202eb",
    "/bucket/a\udcffb",
    # sibling-prefix escape (/data vs /data-x) spelled in the path
    "/data/../data-x/secret",
    "obs://data/..%2fdata-x/secret",
    # characters outside the grammar
    "/bucket/a*b",
    "/bucket/a:b",
    "/bucket/a|b",
    "/bucket/a<b>",
    "/bucket/a$b",
    "/bucket/a`b",
    # bad buckets
    "/Bucket/x",
    "/ab/x",
    "/-bucket/x",
    "/bucket-/x",
    "/a..b/x",
    "/a.-b/x",
    "/192.168.1.1/x",
    "/" + "b" * 64 + "/x",
    "/bücket/x",
    # too long: a segment over NAME_MAX, a key over 1024 bytes, a value over 1024 characters
    "/bucket/" + "a" * 256,
    "/bucket/" + "é" * 200 + "/" + "é" * 200 + "/" + "é" * 200,
    "/bucket/" + "a/" * 600,
]

ACCEPTED = {
    "/bucket/dir/": ObsPath("bucket", "dir/"),
    "obs://bucket/dir/file.txt": ObsPath("bucket", "dir/file.txt"),
    "/bucket": ObsPath("bucket", ""),
    "/bucket/": ObsPath("bucket", ""),
    "obs://bucket": ObsPath("bucket", ""),
    "obs://my.bucket-01/Data/Train.CSV": ObsPath("my.bucket-01", "Data/Train.CSV"),
    "/bucket/数据/é.txt": ObsPath("bucket", "数据/é.txt"),
    "/bucket/a b(1)!'~=+@,_-.txt": ObsPath("bucket", "a b(1)!'~=+@,_-.txt"),
    "/bucket/.../.hidden/": ObsPath("bucket", ".../.hidden/"),
    "/bucket/" + "a" * 255: ObsPath("bucket", "a" * 255),
}


def assert_refused(value: Any) -> None:
    with pytest.raises(ApiError) as caught:
        parse_obs_url(value)
    assert caught.value.status == 400
    assert caught.value.code == "ModelArts.2791"
    assert caught.value.message.startswith("InvalidObsPath: ")


@pytest.mark.parametrize("value", HOSTILE, ids=[ascii(value)[:40] for value in HOSTILE])
def test_hostile_values_are_refused(value: str) -> None:
    assert_refused(value)


def test_non_strings_are_refused() -> None:
    assert_refused(cast(Any, b"/bucket/x"))
    assert_refused(cast(Any, None))


@pytest.mark.parametrize("value", list(ACCEPTED), ids=[ascii(value)[:40] for value in ACCEPTED])
def test_accepted_values_parse_and_round_trip(value: str) -> None:
    path = parse_obs_url(value)
    assert path == ACCEPTED[value]
    assert parse_obs_url(path.url()) == path


def test_keys_are_case_sensitive() -> None:
    assert parse_obs_url("/bucket/A") != parse_obs_url("/bucket/a")


def test_error_messages_escape_control_characters() -> None:
    with pytest.raises(ApiError) as caught:
        parse_obs_url("/bucket/a\nb\x1b[31m")
    assert "\n" not in caught.value.message
    assert "\x1b" not in caught.value.message


def test_path_helpers() -> None:
    file = parse_obs_url("obs://bucket/a/b.txt")
    folder = parse_obs_url("/bucket/a/")
    root = parse_obs_url("/bucket")
    assert (file.is_dir, folder.is_dir, root.is_dir) == (False, True, True)
    assert (file.name, folder.name, root.name) == ("b.txt", "a", "")
    assert file.parent == folder and folder.parent == root and root.parent == root
    assert file.segments == ("a", "b.txt") and root.segments == ()
    assert root.url() == "obs://bucket/" and folder.url() == "obs://bucket/a/"
    assert folder.child("c") == ObsPath("bucket", "a/c")
    assert folder.child("c", is_dir=True) == ObsPath("bucket", "a/c/")
    assert ObsPath("bucket", "a").child("c") == ObsPath("bucket", "a/c")  # a file path taken as its folder
    assert root.child("x") == ObsPath("bucket", "x")
    assert ObsPath("bucket", "a").as_dir() == folder


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\\b", "%2e", "a#b", "a\x00", "\uff0e\uff0e", "a" * 256])
def test_child_refuses_anything_but_one_segment(name: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_obs_url("/bucket/dir/").child(name)
    assert caught.value.code == "ModelArts.2791"


# --- the property: whatever the text, a refusal or a path that maps inside its bucket ------------

DANGEROUS = [*"aZ09.-_/\\%#?;:~ ()!'\x00\n", "..", "%2e", "%2f", "\u2024", "\uff0e", "\u2044", "½", "é", "数"]
segments = st.lists(st.lists(st.sampled_from(DANGEROUS), max_size=6).map("".join), max_size=5)
structured = st.builds(
    lambda prefix, bucket, parts, slash: prefix + bucket + "/" + "/".join(parts) + slash,
    st.sampled_from(["/", "obs://", "//", "OBS://", "s3://", "file://", "", "obs:/"]),
    st.one_of(st.sampled_from(["bucket", "data", "data-x", "a.b", "ab", "Bucket"]), st.text(max_size=8)),
    segments,
    st.sampled_from(["", "/"]),
)

# Mostly valid paths, so that the "maps inside its bucket" half of the property is exercised often.
SAFE = [*"abZ09.-_~ ()!'+=@,", "é", "数", "٣", "ǅ"]
near_valid = st.builds(
    lambda prefix, bucket, parts, slash: prefix + bucket + "/" + "/".join(parts) + slash,
    st.sampled_from(["/", "obs://"]),
    st.sampled_from(["bucket", "data", "data-x", "a.b", "b-1.c"]),
    st.lists(st.lists(st.sampled_from(SAFE), min_size=1, max_size=8).map("".join), max_size=6),
    st.sampled_from(["", "/"]),
)


@pytest.fixture(scope="module")
def property_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ObjectStore, Path]]:
    settings_ = Settings.from_env({"OPENARTS_DATA_DIR": str(tmp_path_factory.mktemp("property") / "data")})
    yield ObjectStore(settings_), settings_.obs_root.resolve()


@settings(max_examples=400, deadline=None)
@given(value=st.one_of(st.text(max_size=80), structured, near_valid))
def test_any_text_is_refused_or_maps_inside_its_bucket(property_store: tuple[ObjectStore, Path], value: str) -> None:
    store, root = property_store
    try:
        path = parse_obs_url(value)
    except ApiError as exc:
        assert (exc.status, exc.code) == (400, "ModelArts.2791")
        return
    bucket_dir = root / path.bucket
    local = store.local_path(path)
    # The mapping is purely lexical and already normal: no "." or ".." left for the OS to interpret.
    assert os.path.normpath(local) == str(local)
    assert local.resolve().is_relative_to(bucket_dir)
    assert bucket_dir.parent == root
    assert parse_obs_url(path.url()) == path
