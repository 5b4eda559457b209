"""The question's transport: one HTTP/1.1 `GET` over a pool of keep-alive connections.

The question is on the path of every guarded request, and a general HTTP client costs more
than Keyport's answer itself: httpx spends several times the round trip of a cached
`/v1/authorize` on building and parsing (bench/middleware_bench.py measures both). This speaks
just what the question needs — one GET without a body; an answer framed by `Content-Length`,
chunked, or by the connection's close — with the whole exchange bounded by one timeout.

Pools are made when the first request asks (importing or configuring an app opens nothing) and
belong to one process: a pre-forking server's child that finds its parent's pool starts its own
and never touches a parent's socket. An asyncio pool belongs to its event loop; under another
event loop (trio), httpx asks instead.

A connection Keyport closed while it sat idle is noticed before it is used, and a reused
connection that fails before any byte of the answer arrived is tried once more on a new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import socket
import ssl
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import httpx

MAX_IDLE = 20  # connections kept open per pool
IDLE_SECONDS = 4.0  # uvicorn closes an idle connection after 5 s: drop it before that
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
Headers = list[tuple[str, str]]
RequestHeaders = list[tuple[bytes, bytes]]


class WireError(Exception):
    """No usable answer: connection refused or lost, timeout, or an answer we cannot read."""


class _Unanswered(WireError):
    """The connection failed before any byte of the answer: a reused one may be retried."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    scheme: str
    host: str
    port: int
    base_path: str  # "" or "/prefix", without a trailing slash
    host_header: bytes

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"keyport_url: {url!r} is not an http:// or https:// URL")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError(f"keyport_url: {url!r} must not have a query, fragment or user")
        port = parts.port or (443 if parts.scheme == "https" else 80)
        host = parts.hostname
        shown = f"[{host}]" if ":" in host else host
        default = port == (443 if parts.scheme == "https" else 80)
        header = shown if default else f"{shown}:{port}"
        return cls(parts.scheme, host, port, parts.path.rstrip("/"), header.encode("idna"))


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Headers  # names in lower case
    body: bytes
    reusable: bool


def request_bytes(endpoint: Endpoint, target: bytes, headers: RequestHeaders) -> bytes:
    for name, value in headers:
        if b"\r" in value or b"\n" in value or b"\0" in value:
            raise ValueError(f"header {name.decode()} holds a line break")
    lines = [b"GET ", target, b" HTTP/1.1\r\nhost: ", endpoint.host_header, b"\r\n"]
    for name, value in headers:
        lines += [name, b": ", value, b"\r\n"]
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass(frozen=True, slots=True)
class _Head:
    status: int
    headers: Headers
    length: int | None  # None: chunked, or until the connection closes
    chunked: bool
    keep_alive: bool


def _parse_head(raw: bytes) -> _Head:
    lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or not code.isdigit():
        raise WireError("not an HTTP/1.x answer")
    headers: Headers = []
    length: int | None = None
    chunked = False
    keep_alive = version == "HTTP/1.1"
    for line in lines[1:]:
        if not line:
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise WireError("malformed header line")
        name, value = name.strip().lower(), value.strip()
        headers.append((name, value))
        if name == "content-length":
            if not value.isdigit() or (length is not None and length != int(value)):
                raise WireError("bad content-length")
            length = int(value)
        elif name == "transfer-encoding":
            chunked = value.lower().endswith("chunked")
        elif name == "connection":
            tokens = {token.strip().lower() for token in value.split(",")}
            keep_alive = "close" not in tokens and (keep_alive or "keep-alive" in tokens)
    if chunked:
        length = None
    elif length is None:
        keep_alive = False  # the body runs until the connection closes
    if length is not None and length > MAX_BODY:
        raise WireError("answer too large")
    return _Head(int(code), headers, length, chunked, keep_alive)


def _chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip()
    try:
        found = int(size, 16)
    except ValueError:
        raise WireError("bad chunk size") from None
    if found < 0 or found > MAX_BODY:
        raise WireError("bad chunk size")
    return found


# --- blocking --------------------------------------------------------------------------------


class _SyncConnection:
    def __init__(self, endpoint: Endpoint, timeout: float, context: ssl.SSLContext | None):
        sock = socket.create_connection((endpoint.host, endpoint.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=endpoint.host)
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self.file: IO[bytes] = sock.makefile("rb")
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        """Idle and still open: nothing to read (a readable idle socket was closed by Keyport)."""
        if time.monotonic() - self.idle_since > IDLE_SECONDS:
            return False
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable

    def exchange(self, request: bytes, deadline: float) -> Answer:
        self._wait(deadline)
        try:
            self.sock.sendall(request)
            first = self.file.readline(MAX_HEAD)
        except TimeoutError:
            raise  # Keyport is slow, not gone: no second try
        except OSError as error:
            raise _Unanswered(str(error)) from error
        if not first:
            raise _Unanswered("connection closed")
        head = self._head(first, deadline)
        while 100 <= head.status < 200:  # an interim answer: the real one follows
            head = self._head(self.file.readline(MAX_HEAD), deadline)
        body = self._body(head, deadline)
        return Answer(head.status, head.headers, body, head.keep_alive)

    def _wait(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise WireError("timed out")
        self.sock.settimeout(left)

    def _head(self, first: bytes, deadline: float) -> _Head:
        lines = [first]
        size = len(first)
        while lines[-1] not in (b"\r\n", b"\n"):
            self._wait(deadline)
            line = self.file.readline(MAX_HEAD)
            size += len(line)
            if not line or size > MAX_HEAD:
                raise WireError("answer head cut short or too large")
            lines.append(line)
        return _parse_head(b"".join(lines).replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))

    def _body(self, head: _Head, deadline: float) -> bytes:
        if head.length is not None:
            self._wait(deadline)
            body = self.file.read(head.length)
            if len(body) != head.length:
                raise WireError("answer body cut short")
            return body
        if not head.chunked:
            self._wait(deadline)
            body = self.file.read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                raise WireError("answer too large")
            return body
        parts: list[bytes] = []
        while True:
            self._wait(deadline)
            size = _chunk_size(self.file.readline(MAX_HEAD))
            if size == 0:
                while self.file.readline(MAX_HEAD) not in (b"\r\n", b"\n", b""):
                    self._wait(deadline)  # trailers, ignored
                return b"".join(parts)
            chunk = self.file.read(size + 2)
            if len(chunk) != size + 2:
                raise WireError("chunk cut short")
            parts.append(chunk[:size])
            if sum(map(len, parts)) > MAX_BODY:
                raise WireError("answer too large")

    def close(self) -> None:
        for closing in (self.file, self.sock):
            with contextlib.suppress(OSError):
                closing.close()


class SyncWire:
    """Thread-safe: each request takes a connection of its own from the pool."""

    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = ssl.create_default_context() if endpoint.scheme == "https" else None
        self._idle: deque[_SyncConnection] = deque()
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def get(self, target: bytes, headers: RequestHeaders) -> Answer:
        request = request_bytes(self.endpoint, target, headers)
        deadline = time.monotonic() + self.timeout
        connection = self._reused()
        if connection is not None:
            try:
                return self._exchange(connection, request, deadline)
            except _Unanswered:
                pass  # closed by Keyport as we sent: once more, on a new connection
        try:
            left = max(deadline - time.monotonic(), 0.001)
            connection = _SyncConnection(self.endpoint, left, self._context)
        except OSError as error:
            raise WireError(str(error)) from error
        return self._exchange(connection, request, deadline)

    def _exchange(self, connection: _SyncConnection, request: bytes, deadline: float) -> Answer:
        try:
            answer = connection.exchange(request, deadline)
        except BaseException as error:
            connection.close()
            if isinstance(error, OSError):  # a timeout, or the connection lost mid-answer
                raise WireError(str(error)) from error
            raise
        if answer.reusable:
            connection.idle_since = time.monotonic()
            with self._lock:
                if len(self._idle) < MAX_IDLE and self._pid == os.getpid():
                    self._idle.append(connection)
                    return answer
        connection.close()
        return answer

    def _reused(self) -> _SyncConnection | None:
        with self._lock:
            if self._pid != os.getpid():
                # Another process's sockets: dropped, never closed or used here.
                self._idle = deque()
                self._pid = os.getpid()
            while self._idle:
                connection = self._idle.pop()
                if connection.usable():
                    return connection
                connection.close()
        return None

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, deque()
            mine = self._pid == os.getpid()
        for connection in idle if mine else ():
            connection.close()


# --- asyncio ---------------------------------------------------------------------------------


class _AsyncConnection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = time.monotonic()

    def usable(self) -> bool:
        return (
            time.monotonic() - self.idle_since <= IDLE_SECONDS
            and not self.reader.at_eof()
            and not self.writer.is_closing()
        )

    async def exchange(self, request: bytes) -> Answer:
        try:
            self.writer.write(request)
            head = await self._head()
        except (OSError, asyncio.IncompleteReadError) as error:
            raise _Unanswered(str(error)) from error
        while 100 <= head.status < 200:
            head = await self._head()
        return Answer(head.status, head.headers, await self._body(head), head.keep_alive)

    async def _head(self) -> _Head:
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            raise WireError("answer head too large") from None
        return _parse_head(raw)

    async def _body(self, head: _Head) -> bytes:
        reader = self.reader
        if head.length is not None:
            return await reader.readexactly(head.length)
        if not head.chunked:
            body = await reader.read(MAX_BODY + 1)
            if len(body) > MAX_BODY or not reader.at_eof():
                raise WireError("answer too large")
            return body
        parts: list[bytes] = []
        while True:
            size = _chunk_size(await reader.readuntil(b"\r\n"))
            if size == 0:
                while await reader.readuntil(b"\r\n") != b"\r\n":
                    pass  # trailers, ignored
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:size])
            if sum(map(len, parts)) > MAX_BODY:
                raise WireError("answer too large")

    def close(self) -> None:
        self.writer.close()


class AsyncWire:
    def __init__(self, endpoint: Endpoint, timeout: float) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._context = ssl.create_default_context() if endpoint.scheme == "https" else None
        self._pid = os.getpid()
        self._idle: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, deque[_AsyncConnection]]
        self._idle = weakref.WeakKeyDictionary()
        self._httpx: httpx.AsyncClient | None = None  # under an event loop not asyncio's

    async def get(self, target: bytes, headers: RequestHeaders) -> Answer:
        if self._pid != os.getpid():
            self._idle = weakref.WeakKeyDictionary()
            self._httpx = None
            self._pid = os.getpid()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return await self._by_httpx(target, headers)
        request = request_bytes(self.endpoint, target, headers)
        idle = self._idle.get(loop)
        if idle is None:
            idle = self._idle[loop] = deque()
        try:
            async with asyncio.timeout(self.timeout):
                return await self._exchange(idle, request)
        except TimeoutError:
            raise WireError("timed out") from None

    async def _exchange(self, idle: deque[_AsyncConnection], request: bytes) -> Answer:
        while idle:
            connection = idle.pop()
            if not connection.usable():
                connection.close()
                continue
            try:
                return await self._use(connection, idle, request)
            except _Unanswered:
                break  # closed by Keyport as we sent: once more, on a new connection
        try:
            reader, writer = await asyncio.open_connection(
                self.endpoint.host,
                self.endpoint.port,
                ssl=self._context,
                server_hostname=self.endpoint.host if self._context else None,
            )
        except OSError as error:
            raise WireError(str(error)) from error
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return await self._use(_AsyncConnection(reader, writer), idle, request)

    @staticmethod
    async def _use(
        connection: _AsyncConnection, idle: deque[_AsyncConnection], request: bytes
    ) -> Answer:
        try:
            answer = await connection.exchange(request)
        except BaseException as error:
            connection.close()
            if isinstance(error, OSError | asyncio.IncompleteReadError):
                raise WireError(str(error)) from error
            raise
        if answer.reusable and len(idle) < MAX_IDLE:
            connection.idle_since = time.monotonic()
            idle.append(connection)
        else:
            connection.close()
        return answer

    async def _by_httpx(self, target: bytes, headers: RequestHeaders) -> Answer:
        if self._httpx is None:
            self._httpx = httpx.AsyncClient(timeout=self.timeout)
        url = f"{self.endpoint.scheme}://{self.endpoint.host_header.decode()}{target.decode()}"
        try:
            answer = await self._httpx.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise WireError(str(error)) from error
        return Answer(
            answer.status_code, _lower(answer.headers.multi_items()), answer.content, True
        )

    async def aclose(self) -> None:
        """Closes the running loop's idle connections (tests, orderly shutdowns)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            if self._httpx is not None:
                await self._httpx.aclose()
            return
        for connection in self._idle.pop(loop, deque()):
            connection.close()


def _lower(items: Any) -> Headers:
    return [(name.lower(), value) for name, value in items]
