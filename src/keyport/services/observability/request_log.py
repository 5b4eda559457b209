"""One JSON line per request on stdout, written in the background.

`observe` keeps the request's record; a background task encodes the records kept and writes
their lines every LOG_INTERVAL seconds. Three measured choices:
- lines are encoded in one loop at write time, not one by one on each request's path: a line
  encoded among a request's other work cost about three times what it costs in a loop
  (bench/README.md, session 10). What is kept meanwhile costs the garbage collector little:
  each record's fields as a plain tuple of strings and numbers (an AuthOutcome at most),
  which the first young collection it lives through stops tracking;
- the lines of a batch are encoded by msgspec in one call;
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

import asyncio
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
ENCODE_STEP = 500  # lines encoded between two turns of the event loop (~1 ms)
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


class _Line(msgspec.Struct, gc=False):
    time: str
    event: str
    request_id: str
    method: str
    path: str
    route: str | None
    status: int
    latency_ms: float
    key_id: str | None
    acting_user_id: str | None
    auth_failure: str | None
    client_ip: str | None


_MILLISECONDS = [f"{n:03}Z" for n in range(1000)]
_encoder = msgspec.json.Encoder()


def log_line(record: RequestRecord) -> bytes:
    """`{"time", "event", "request_id", "method", "path", "route", "status", "latency_ms",
    "key_id", "acting_user_id", "auth_failure", "client_ip"}` and a newline."""
    return encoded_lines([record])


def encoded_lines(records: Iterable[tuple[Any, ...]]) -> bytes:
    """The lines of RequestRecords (or their fields as plain tuples), encoded together: one
    loop builds the lines' fields, msgspec encodes them all in one call. Encoded one at a time
    among each request's other work, a line cost two to three times as much (bench/README.md,
    session 10). Each whole second is formatted once, each millisecond's text made once."""
    lines = []
    second, prefix, millisecond, stamp = -1, "", -1, ""
    for fields in records:
        request_id, method, path, route, status, latency, client_ip = fields[:7]
        key_id, user_id, auth_failure, started_at = fields[8:12]  # not [7], the user agent
        at = int(started_at * 1000)
        if at != millisecond:
            millisecond = at
            at_second, at_millisecond = divmod(at, 1000)
            if at_second != second:
                second = at_second
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            stamp = prefix + _MILLISECONDS[at_millisecond]
        lines.append(
            _Line(
                stamp,
                "request",
                request_id,
                method[:16],
                without_keys(path, MAX_PATH_LENGTH),
                route,
                status,
                int(latency * 1_000_000) / 1000,
                key_id,
                user_id,
                auth_failure,
                client_ip,
            )
        )
    return _encoder.encode_lines(lines)


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
        self._encoded: list[bytes] = []  # lines encoded, not yet written (stdout may stall)
        self._encoded_lines = 0
        # Graceful: a write in progress finishes; stop() then writes the rest.
        self._loop = PeriodicTask(
            "request-log", self._tick, interval=interval, wait_first=True, graceful=True
        )
        self.dropped = 0

    def observe(self, record: RequestRecord) -> None:
        # Its fields are kept as a plain tuple: the collector stops tracking a tuple of strings
        # and numbers the first time it looks at it (a NamedTuple it tracks for ever).
        if len(self._records) + self._encoded_lines < MAX_BUFFERED_LINES:
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
        # ENCODE_STEP lines at a time, the requests waiting meanwhile answered in between: a
        # quarter of a second of lines encoded at once held them up for milliseconds (p99).
        for _ in range(len(self._records) // ENCODE_STEP):
            self._encode(ENCODE_STEP)
            await asyncio.sleep(0)
        self.write_pending(wait=False)

    def _encode(self, count: int) -> None:
        records = self._records[:count]
        del self._records[:count]
        self._encoded.append(encoded_lines(records))
        self._encoded_lines += len(records)

    def write_pending(self, *, wait: bool) -> None:
        """Encode what was observed and write it; without `wait`, stop at the first chunk
        stdout cannot take now and keep the rest for the next tick."""
        self._encode(len(self._records))
        pending = b"".join(self._encoded)
        self._encoded, self._encoded_lines = [], 0
        limit = self._sink.write_limit
        start = 0
        with memoryview(pending) as view:
            while start < len(pending):
                if not wait and not self._sink.ready():
                    rest = pending[start:]  # nothing is added while this runs
                    self._encoded, self._encoded_lines = [rest], rest.count(b"\n")
                    return
                end = cut(pending, start, limit)
                try:
                    self._sink.write(view[start:end])
                except OSError:  # stdout closed: nothing sensible is left to do
                    self.dropped += pending.count(b"\n", start, end)
                start = end
