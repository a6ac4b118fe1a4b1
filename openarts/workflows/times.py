"""Workflow time formats (reference §0): RFC 3339 with the server's offset and fractional seconds for
objects, ``YYYY-MM-DD HH:MM:SS`` in the server's local time for event strings, durations in seconds."""

from __future__ import annotations

from datetime import datetime


def rfc3339(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().isoformat(timespec="microseconds")


def stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def seconds_between(start_ms: int, end_ms: int) -> int:
    return max(0, (end_ms - start_ms) // 1000) if start_ms else 0
