"""A minimal HTTP/1.1 client for the gateway's calls to model servers (on 127.0.0.1, or on Ray nodes).

The model server (``openarts/inference/runtime``) always answers with ``Content-Length`` and keeps the
connection open, so a call is one write (request line, headers and body together) and one read, on a
pooled connection per address. General clients cost several times more per call than the model server
needs to answer one (a tiny model predicts in well under a millisecond), and the gateway's overhead is
what the inference benchmark judges.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

MAX_HEADER_BYTES = 64 * 1024
MAX_IDLE_PER_ADDRESS = 64


class RefusedError(Exception):
    """The connection could not be opened: the call never reached the model server."""


class BrokenError(Exception):
    """The model server broke off the exchange (it crashed or closed the connection mid-call)."""


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


_Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Pool:
    """Idle keep-alive connections per (event loop, address). Not thread-safe: one event loop uses it."""

    def __init__(self) -> None:
        self._idle: dict[tuple[int, str, int], list[_Connection]] = {}

    async def post(self, address: tuple[str, int], path: str, body: bytes, content_type: str, timeout: float) -> Answer:
        host, port = address
        key = (id(asyncio.get_running_loop()), host, port)
        idle = self._idle.setdefault(key, [])
        connection = idle.pop() if idle else None
        if connection is None:
            try:
                connection = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
            except (OSError, TimeoutError) as exc:
                raise RefusedError(str(exc)) from exc
        reader, writer = connection
        head = (
            f"POST /{path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("latin-1")
        try:
            writer.write(head + body)
            answer = await asyncio.wait_for(_read_answer(reader), timeout)
        except TimeoutError:
            writer.close()
            raise
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            writer.close()
            raise BrokenError(str(exc)) from exc
        if len(idle) < MAX_IDLE_PER_ADDRESS:
            idle.append(connection)
        else:
            writer.close()
        return answer

    def close(self) -> None:
        for connections in self._idle.values():
            for _reader, writer in connections:
                writer.close()
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader) -> Answer:
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEADER_BYTES:
        raise ValueError("response headers too large")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    length = 0
    content_type = "application/json"
    for line in lines[1:]:
        name, _, value = line.partition(":")
        lowered = name.strip().lower()
        if lowered == "content-length":
            length = int(value.strip())
        elif lowered == "content-type":
            content_type = value.strip()
    body = await reader.readexactly(length) if length else b""
    return Answer(status, content_type, body)
