"""One JSON line per request on stdout, written in the background.

`observe` keeps the request's record; a background task encodes the records kept and writes
their lines every LOG_INTERVAL seconds. Three measured choices:
- lines are encoded in one loop at write time, not one by one on each request's path: a line
  encoded among a request's other work cost about three times what it costs in a loop
  (bench/README.md, session 10). What is kept meanwhile costs the garbage collector little:
  each record's fields as a plain tuple of strings and numbers (an AuthOutcome at most),
  which the first young collection it lives through stops tracking;
- a line is mostly joined from fields encoded before (per route, per caller): only the time,
  the request id and the latency are encoded for each;
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
from collections.abc import Iterable
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


class _Fragments(dict[tuple[Any, ...], bytes]):
    """Encoded fields (`"name":value,...`, no braces) by what they encode, so that a line is
    mostly joined from bytes made before: lines repeat everything but the time, the request id
    and the latency. At most `limit` are kept (then they start over): ids and paths are
    unbounded. (A dict: `get` is the dict's own, the cheapest lookup there is.)"""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def add(self, values: tuple[Any, ...], fields: msgspec.Struct) -> bytes:
        if len(self) >= self._limit:
            self.clear()
        encoded = self[values] = _encoder.encode(fields)[1:-1]
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
    return encoded_lines([record])


def encoded_lines(records: Iterable[tuple[Any, ...]]) -> bytes:
    """The lines of RequestRecords (or their fields as plain tuples), encoded in one loop: its
    names stay bound, and its code and the fragments stay in the CPU's caches, where a line
    encoded among each request's other work cost about three times as much (bench/README.md,
    session 10)."""
    routes, callers, timestamp, line = _routes, _callers, _timestamp, _LINE
    lines = []
    for fields in records:
        request_id, method, path, route, status, latency, client_ip = fields[:7]
        key_id, user_id, auth_failure, started_at = fields[8:12]  # not [7], the user agent
        shared = (method, path, route, status)
        of_route = routes.get(shared)
        if of_route is None:
            encoded = _Route(method[:16], without_keys(path, MAX_PATH_LENGTH), route, status)
            of_route = routes.add(shared, encoded)
        caller = (key_id, user_id, auth_failure, client_ip)
        of_caller = callers.get(caller)
        if of_caller is None:
            of_caller = callers.add(caller, _Caller(*caller))
        lines.append(
            line
            % (
                timestamp(started_at),
                # The gate's ids are hex; anything else is escaped as JSON wants it.
                request_id.encode() if request_id.isalnum() else _encoder.encode(request_id)[1:-1],
                of_route,
                *divmod(int(latency * 1_000_000), 1000),  # ms, to the microsecond
                of_caller,
            )
        )
    return b"".join(lines)


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
        self._records: list[tuple[Any, ...]] = []  # RequestRecords' fields, not yet encoded
        self._unwritten = b""  # lines encoded that stdout did not take yet (it stalled)
        self._unwritten_lines = 0
        # Graceful: a write in progress finishes; stop() then writes the rest.
        self._loop = PeriodicTask(
            "request-log", self._tick, interval=interval, wait_first=True, graceful=True
        )
        self.dropped = 0

    def observe(self, record: RequestRecord) -> None:
        # Its fields are kept as a plain tuple: the collector stops tracking a tuple of strings
        # and numbers the first time it looks at it (a NamedTuple it tracks for ever).
        if len(self._records) + self._unwritten_lines < MAX_BUFFERED_LINES:
            self._records.append(tuple(record))
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
        """Encode what was observed and write it; without `wait`, stop at the first chunk
        stdout cannot take now and keep the rest for the next tick."""
        pending = self._unwritten + encoded_lines(self._records)
        self._records, self._unwritten, self._unwritten_lines = [], b"", 0
        limit = self._sink.write_limit
        start = 0
        with memoryview(pending) as view:
            while start < len(pending):
                if not wait and not self._sink.ready():
                    rest = pending[start:]  # nothing is added while this runs
                    self._unwritten, self._unwritten_lines = rest, rest.count(b"\n")
                    return
                end = cut(pending, start, limit)
                try:
                    self._sink.write(view[start:end])
                except OSError:  # stdout closed: nothing sensible is left to do
                    self.dropped += pending.count(b"\n", start, end)
                start = end
