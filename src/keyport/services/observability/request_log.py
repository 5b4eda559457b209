"""One JSON line per request on stdout, written in the background.

`observe` encodes the line (a few microseconds) and appends the bytes to a buffer; a
background task writes the buffer every LOG_INTERVAL seconds. Two measured choices:
- it buffers bytes, not records: bytes are invisible to the garbage collector, while
  thousands of buffered records would survive into its old generation and set off full
  collections;
- it writes from the event loop, never a thread: a writer thread fights the loop for the GIL
  after every write, which cost 10-15 % of throughput. A write is made only when stdout can
  take it without blocking (poll), so a stalled log reader costs lines (counted in
  `keyport_request_log_dropped_total` once MAX_BUFFERED_LINES wait), never requests.

Lines carry ids, never credentials: no header is logged (the user agent neither), and a path
that contains something shaped like a key is redacted.

Lines of several workers sharing one stdout never interleave. Writes to a pipe or a socket are
cut at line boundaries into chunks of at most PIPE_BUF bytes, which the OS writes to a pipe
atomically (and accepts whenever poll says it is writable); a regular file (or /dev/null)
takes up to WRITE_AT_MOST in one write, appended whole under the file's lock. The buffer is
joined once and cut where its newlines are: no Python work per line once it is encoded.
"""

from __future__ import annotations

import os
import select
import stat
import time
from typing import Any, Protocol

import msgspec

from keyport.domain.usage import MAX_PATH_LENGTH, without_keys
from keyport.services.observability.request_record import RequestRecord
from keyport.services.runtime.periodic import PeriodicTask

LOG_INTERVAL = 0.25
MAX_BUFFERED_LINES = 100_000  # beyond this (stdout blocked for long), lines are dropped
PIPE_BUF = 4096
WRITE_AT_MOST = 1024 * 1024  # a write to a file: lines are kept whole, the loop not held long


class Sink(Protocol):
    # The most bytes of whole lines one write may carry (PIPE_BUF for a pipe or a socket).
    write_limit: int

    def ready(self) -> bool:
        """True when a write of up to `write_limit` bytes will not block."""
        ...

    def write(self, chunk: bytes | memoryview) -> None: ...


class StdoutSink:
    """File descriptor 1, written directly (no Python buffer in between)."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)
        mode = os.fstat(fd).st_mode
        whole = stat.S_ISREG(mode) or stat.S_ISCHR(mode)  # a file, a terminal, /dev/null
        self.write_limit = WRITE_AT_MOST if whole else PIPE_BUF

    def ready(self) -> bool:
        return bool(self._poll.poll(0))

    def write(self, chunk: bytes | memoryview) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view) :]


class _Route(msgspec.Struct, gc=False):
    """A line's fields that a route's requests share."""

    method: str
    path: str
    route: str | None
    status: int


class _Caller(msgspec.Struct, gc=False):
    """A line's fields that a client's requests with one key share."""

    key_id: str | None
    acting_user_id: str | None
    auth_failure: str | None
    client_ip: str | None


class _Fragments:
    """Encoded fields (`"name":value,...`, no braces) by what they encode, so that a line is
    mostly joined from bytes made before: lines repeat everything but the time, the request id
    and the latency. At most `limit` are kept (then they start over): ids and paths are
    unbounded."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._encoded: dict[tuple[Any, ...], bytes] = {}

    def get(self, values: tuple[Any, ...]) -> bytes | None:
        return self._encoded.get(values)

    def add(self, values: tuple[Any, ...], fields: msgspec.Struct) -> bytes:
        if len(self._encoded) >= self._limit:
            self._encoded.clear()
        encoded = self._encoded[values] = _encoder.encode(fields)[1:-1]
        return encoded


class _Timestamps:
    """`2026-11-27T20:11:23.999Z`, formatting each whole second once and each millisecond's
    text once (at thousands of lines a second, several share a millisecond)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""
        self._millisecond = -1
        self._text = b""

    def __call__(self, posix_seconds: float) -> bytes:
        milliseconds = int(posix_seconds * 1000)
        if milliseconds != self._millisecond:
            second, millisecond = divmod(milliseconds, 1000)
            if second != self._second:
                self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
                self._second = second
            self._millisecond = milliseconds
            self._text = self._prefix + _MILLISECONDS[millisecond]
        return self._text


_MILLISECONDS = [f"{n:03}Z".encode() for n in range(1000)]
_encoder = msgspec.json.Encoder()
_timestamp = _Timestamps()
_routes = _Fragments(4096)
_callers = _Fragments(65_536)  # a few per key in use


def log_line(record: RequestRecord) -> bytes:
    """`{"time", "event", "request_id", "method", "path", "route", "status", "latency_ms",
    "key_id", "acting_user_id", "auth_failure", "client_ip"}` and a newline."""
    method, path, route, status = shared = (
        record.method,
        record.path,
        record.route,
        record.status,
    )
    of_route = _routes.get(shared)
    if of_route is None:
        fields = _Route(method[:16], without_keys(path, MAX_PATH_LENGTH), route, status)
        of_route = _routes.add(shared, fields)
    caller = (record.key_id, record.acting_user_id, record.auth_failure, record.client_ip)
    of_caller = _callers.get(caller)
    if of_caller is None:
        of_caller = _callers.add(caller, _Caller(*caller))
    request_id = record.request_id
    return _LINE % (
        _timestamp(record.started_at),
        # The gate's ids are hex; anything else is escaped as JSON wants it.
        request_id.encode() if request_id.isalnum() else _encoder.encode(request_id)[1:-1],
        of_route,
        *divmod(int(record.latency * 1_000_000), 1000),  # milliseconds, to the microsecond
        of_caller,
    )


_LINE = b'{"time":"%s","event":"request","request_id":"%s",%s,"latency_ms":%d.%03d,%s}\n'


def cut(buffer: bytes, start: int, limit: int) -> int:
    """Where the write from `start` ends: after the last whole line within `limit` bytes (a
    longer line is written alone, whole)."""
    if len(buffer) - start <= limit:
        return len(buffer)
    newline = buffer.rfind(b"\n", start, start + limit)
    if newline < 0:
        newline = buffer.find(b"\n", start + limit)
        if newline < 0:
            return len(buffer)
    return newline + 1


class RequestLog:
    def __init__(self, sink: Sink | None = None, *, interval: float = LOG_INTERVAL) -> None:
        self._sink = sink or StdoutSink()
        self._pending: list[bytes] = []  # of lines, or (after a stall) of many lines
        self._lines = 0  # in _pending
        # Graceful: a write in progress finishes; stop() then writes the rest.
        self._loop = PeriodicTask(
            "request-log", self._tick, interval=interval, wait_first=True, graceful=True
        )
        self.dropped = 0

    def observe(self, record: RequestRecord) -> None:
        if self._lines < MAX_BUFFERED_LINES:
            self._pending.append(log_line(record))
            self._lines += 1
        else:
            self.dropped += 1

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the background task, then write what is left, waiting for stdout if need be."""
        await self._loop.stop()
        self.write_pending(wait=True)

    async def _tick(self) -> None:
        self.write_pending(wait=False)

    def write_pending(self, *, wait: bool) -> None:
        """Write the buffer; without `wait`, stop at the first chunk stdout cannot take now
        and keep the rest for the next tick."""
        pending = b"".join(self._pending)
        self._pending, self._lines = [], 0
        limit = self._sink.write_limit
        start = 0
        with memoryview(pending) as view:
            while start < len(pending):
                if not wait and not self._sink.ready():
                    rest = pending[start:]  # nothing is added while this runs
                    self._pending, self._lines = [rest], rest.count(b"\n")
                    return
                end = cut(pending, start, limit)
                try:
                    self._sink.write(view[start:end])
                except OSError:  # stdout closed: nothing sensible is left to do
                    self.dropped += pending.count(b"\n", start, end)
                start = end
