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

Writes are cut at line boundaries into chunks of at most PIPE_BUF bytes, which the OS writes
to a pipe atomically (and accepts whenever poll says it is writable): lines of several
workers sharing one stdout never interleave.
"""

from __future__ import annotations

import os
import select
import time
from typing import Any, Protocol

import msgspec

from keyport.domain.usage import MAX_PATH_LENGTH, without_keys
from keyport.services.observability.request_record import RequestRecord
from keyport.services.runtime.periodic import PeriodicTask

LOG_INTERVAL = 0.25
MAX_BUFFERED_LINES = 100_000  # beyond this (stdout blocked for long), lines are dropped
PIPE_BUF = 4096


class Sink(Protocol):
    def ready(self) -> bool:
        """True when a write of up to PIPE_BUF bytes will not block."""
        ...

    def write(self, chunk: bytes) -> None: ...


class StdoutSink:
    """File descriptor 1, written directly (no Python buffer in between)."""

    def __init__(self, fd: int = 1) -> None:
        self._fd = fd
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)

    def ready(self) -> bool:
        return bool(self._poll.poll(0))

    def write(self, chunk: bytes) -> None:
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
    """`2026-11-27T20:11:23.999Z`, formatting each whole second once (lines come in bursts)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def __call__(self, posix_seconds: float) -> bytes:
        second, millisecond = divmod(int(posix_seconds * 1000), 1000)
        if second != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)).encode()
            self._second = second
        return self._prefix + _MILLISECONDS[millisecond]


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
    return b"".join(
        (
            b'{"time":"',
            _timestamp(record.started_at),
            b'","event":"request","request_id":',
            # The gate's ids are hex; anything else is encoded as JSON wants it.
            b'"%s"' % request_id.encode() if request_id.isalnum() else _encoder.encode(request_id),
            b",",
            of_route,
            b',"latency_ms":',
            repr(int(record.latency * 1_000_000) / 1000).encode(),
            b",",
            of_caller,
            b"}\n",
        )
    )


def chunks(lines: list[bytes], limit: int = PIPE_BUF) -> list[bytes]:
    """Lines joined into as few chunks of at most `limit` bytes as possible (a longer line
    is a chunk of its own)."""
    out: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for line in lines:
        if current and size + len(line) > limit:
            out.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        out.append(b"".join(current))
    return out


class RequestLog:
    def __init__(self, sink: Sink | None = None, *, interval: float = LOG_INTERVAL) -> None:
        self._sink = sink or StdoutSink()
        self._pending: list[bytes] = []
        # Graceful: a write in progress finishes; stop() then writes the rest.
        self._loop = PeriodicTask(
            "request-log", self._tick, interval=interval, wait_first=True, graceful=True
        )
        self.dropped = 0

    def observe(self, record: RequestRecord) -> None:
        if len(self._pending) < MAX_BUFFERED_LINES:
            self._pending.append(log_line(record))
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
        pieces = chunks(self._pending)
        self._pending = []
        for index, chunk in enumerate(pieces):
            if not wait and not self._sink.ready():
                self._pending = pieces[index:]  # nothing is added while this runs
                return
            try:
                self._sink.write(chunk)
            except OSError:  # stdout closed: nothing sensible is left to do
                self.dropped += chunk.count(b"\n")
