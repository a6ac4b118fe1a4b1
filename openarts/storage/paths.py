"""The one grammar of object-storage paths (``obs_url`` values).

Every ``obs_url`` that reaches OpenArts (an API body, a CLI argument, a stored row) goes through
:func:`parse_obs_url`, and every store operation re-checks the :class:`ObsPath` it is given against the
same rules, so validation and use never see two different spellings of a path
(``reference/security-reliability.md``, object-storage paths).

The grammar is deliberately narrow. A value is refused, never "cleaned up": nothing is decoded (``%`` is
simply not allowed), nothing is normalised, and anything outside the grammar is a 400
``ModelArts.2791 InvalidObsPath``.

    obs_url  = ("obs://" | "/") bucket [ "/" [ key ] ]
    key      = segment *( "/" segment ) [ "/" ]          a trailing "/" names a directory
    bucket   = 3-63 of [a-z0-9.-], a letter or digit at both ends, no "..", ".-" or "-.", not an IPv4 address
    segment  = 1+ of: ASCII letters and digits, Unicode letters and digits (L*, N*), and  - _ . + = @ , ~ ( ) ! ' space
               not "." or "..", at most 255 UTF-8 bytes, and its NFKC form has no dot or slash look-alike
"""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

from openarts.core.errors import ApiError

MAX_URL_CHARS = 1024
"""The longest value :func:`parse_obs_url` looks at; longer input is refused before any other work."""

MAX_KEY_BYTES = 1024
"""OBS' (and S3's) limit on an object key, in UTF-8 bytes."""

MAX_SEGMENT_BYTES = 255
"""The usual file-name limit (NAME_MAX): a longer segment could not be stored in the local folder."""

SCHEME = "obs://"

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_IPV4 = re.compile(r"\d{1,3}(\.\d{1,3}){3}")
_PUNCTUATION = frozenset("-_.+=@,~()!' ")
# Characters that must never appear once a segment is NFKC-normalised: a file system, a terminal or a
# later tool that normalises would otherwise see a separator or a dot where the grammar saw a letter
# (for example "½" becomes "1⁄2" with a FRACTION SLASH, "ŀ" becomes "l·").
_LOOKALIKE_FREE_CATEGORIES = ("L", "N", "M")


class ObsPath(NamedTuple):
    """A parsed object path: a bucket and a key inside it.

    ``key`` is ``""`` for the bucket root and never starts with ``/``; a key that ends with ``/`` names a
    directory (a prefix), any other key names one object. Build instances with :func:`parse_obs_url` or
    :meth:`child`: the store re-validates every path it is handed, so a hand-made ``ObsPath`` that breaks
    the grammar is refused there too.
    """

    bucket: str
    key: str

    @property
    def is_dir(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    @property
    def name(self) -> str:
        """The last segment (``""`` for the bucket root), without the trailing ``/`` of a directory."""
        return self.key.rstrip("/").rpartition("/")[2]

    @property
    def segments(self) -> tuple[str, ...]:
        """The key split on ``/`` (empty for the bucket root)."""
        stripped = self.key.rstrip("/")
        return tuple(stripped.split("/")) if stripped else ()

    @property
    def parent(self) -> ObsPath:
        """The directory holding this path (the bucket root is its own parent)."""
        stripped = self.key.rstrip("/")
        return ObsPath(self.bucket, stripped[: len(stripped) - len(self.name)])

    def url(self) -> str:
        """The canonical spelling, ``obs://bucket/key``."""
        return f"{SCHEME}{self.bucket}/{self.key}"

    def as_dir(self) -> ObsPath:
        """The same path as a directory: ``obs://b/data`` becomes ``obs://b/data/``."""
        return self if self.is_dir else ObsPath(self.bucket, self.key + "/")

    def child(self, name: str, *, is_dir: bool = False) -> ObsPath:
        """Join one segment below this path (a file path is taken as its directory).

        ``name`` must be a single valid segment: a ``/``, ``..`` or any character outside the grammar
        raises :func:`invalid_obs_path`. With ``is_dir`` the result is a directory path.
        """
        problem = segment_problem(name)
        if problem:
            raise invalid_obs_path(f"{_show(name)} is not a valid name below {self.url()}: {problem}.")
        key = self.as_dir().key + name + ("/" if is_dir else "")
        return validate(ObsPath(self.bucket, key))


def invalid_obs_path(message: str) -> ApiError:
    """The error for every refused object path (the training catalogue's ``2791 InvalidObsPath``)."""
    return ApiError(400, "ModelArts.2791", f"InvalidObsPath: {message}")


def parse_obs_url(value: str) -> ObsPath:
    """Parse ``/bucket/key`` or ``obs://bucket/key``; anything else raises :func:`invalid_obs_path`."""
    if not isinstance(value, str):
        raise invalid_obs_path(f"an OBS path must be a string, got {type(value).__name__}.")
    if len(value) > MAX_URL_CHARS:
        raise invalid_obs_path(f"an OBS path must be at most {MAX_URL_CHARS} characters.")
    if value.startswith(SCHEME):
        rest = value[len(SCHEME) :]
    elif value.startswith("/"):
        rest = value[1:]
    else:
        raise invalid_obs_path(f"{_show(value)} must start with '/' or 'obs://'.")
    bucket, _, key = rest.partition("/")
    return _validated(ObsPath(bucket, key), value)


def validate(path: ObsPath) -> ObsPath:
    """Check a path built in code against the grammar; return it unchanged or raise."""
    if not isinstance(path, ObsPath) or not isinstance(path.bucket, str) or not isinstance(path.key, str):
        raise invalid_obs_path(f"{_show(path)} is not an OBS path.")
    return _validated(path, path.url())


def bucket_problem(bucket: str) -> str | None:
    """Why ``bucket`` is not a valid bucket name, or ``None`` when it is (OBS' naming rules)."""
    if not _BUCKET.fullmatch(bucket):
        return "a bucket name is 3-63 lower-case letters, digits, '-' or '.', with a letter or digit at both ends"
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return "a bucket name cannot contain '..', '.-' or '-.'"
    if _IPV4.fullmatch(bucket):
        return "a bucket name cannot be an IP address"
    return None


def segment_problem(segment: str) -> str | None:
    """Why ``segment`` cannot be one step of a key, or ``None`` when it can."""
    if segment == "":
        return "empty segments ('//') are not allowed"
    if segment in (".", ".."):
        return f"'{segment}' segments are not allowed"
    for char in segment:
        if not _allowed_char(char):
            return f"the character {_show(char)} is not allowed"
    if len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES:
        return f"a segment must be at most {MAX_SEGMENT_BYTES} UTF-8 bytes"
    normalised = unicodedata.normalize("NFKC", segment)
    if normalised in (".", "..") or not all(_lookalike_free(char) for char in normalised):
        return "it contains a look-alike of a dot or a slash"
    return None


def _validated(path: ObsPath, shown: str) -> ObsPath:
    problem = bucket_problem(path.bucket)
    if problem:
        raise invalid_obs_path(f"{_show(shown)}: {problem}.")
    if len(path.key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise invalid_obs_path(f"{_show(shown)}: an object key must be at most {MAX_KEY_BYTES} bytes.")
    if path.key:
        # A directory key ends with one "/", which leaves one empty string after the split.
        segments = path.key.split("/")
        if path.key.endswith("/"):
            segments.pop()
        for segment in segments:
            problem = segment_problem(segment)
            if problem:
                raise invalid_obs_path(f"{_show(shown)}: {problem}.")
    return path


def _allowed_char(char: str) -> bool:
    if char.isascii():
        return char.isalnum() or char in _PUNCTUATION
    return unicodedata.category(char)[0] in ("L", "N")


def _lookalike_free(char: str) -> bool:
    # NFKC may split a letter into a base and a combining mark (Devanagari QA), which is harmless.
    if char.isascii():
        return char.isalnum() or char in _PUNCTUATION
    return unicodedata.category(char)[0] in _LOOKALIKE_FREE_CATEGORIES


def _show(value: object) -> str:
    """The value for an error message: repr-escaped (no raw control characters) and shortened."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
