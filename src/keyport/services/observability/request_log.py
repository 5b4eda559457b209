"""One JSON line per request on stdout, written in the background.

`observe` keeps the request's record; every ENCODE_STEP records are encoded and written at
once, and a background task writes what is left every LOG_INTERVAL seconds. Four measured
choices:
- lines are encoded in one loop, not one by one on each request's path: a line encoded among
  a request's other work cost about three times what it costs in a loop (measured under
  load). What is kept meanwhile costs the garbage collector little: each record's
  fields as a plain tuple of strings and numbers (an AuthOutcome at most), which the first
  young collection it lives through stops tracking;
- a batch is written as soon as it is full, not kept for the next tick: a quarter second's
  records (thousands, a megabyte and more with their strings) were freed all at once on each
  tick, and the allocator handed their memory back to the OS and took it again (page faults:
  0.08 a request, against 0.002 with the log off);
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
takes up to WRITE_AT_MOST in one write, appended whole under the file's lock. Each encoded
batch is cut where its newlines are: no Python work per line once it is encoded.
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
ENCODE_STEP = 500  # records encoded and written together (~0.3 ms)
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
    among each request's other work, a line cost two to three times as much (measured under
    load). Each whole second is formatted once, each millisecond's text made once, each
    distinct path cleaned once a batch (a batch's requests mostly share a few paths)."""
    lines: list[_Line] = []
    append = lines.append
    second, prefix, millisecond, stamp = -1, "", -1, ""
    cleaned: dict[str, str] = {}
    for fields in records:
        # All of RequestRecord's fields, in its order: one unpacking (a slice costs a tuple).
        (
            request_id,
            method,
            path,
            route,
            status,
            latency,
            client_ip,
            _,  # the user agent: never logged
            key_id,
            user_id,
            auth_failure,
            started_at,
            _,  # verification latency
        ) = fields
        at = int(started_at * 1000)
        if at != millisecond:
            millisecond = at
            at_second, at_millisecond = divmod(at, 1000)
            if at_second != second:
                second = at_second
                prefix = time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second))
            stamp = prefix + _MILLISECONDS[at_millisecond]
        clean = cleaned.get(path)
        if clean is None:
            clean = cleaned[path] = without_keys(path, MAX_PATH_LENGTH)
        append(
            _Line(
                stamp,
                "request",
                request_id,
                method[:16],
                clean,
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


# The dashboard's and the API docs' static files: a page view fetches several, which would
# bury the requests people look for. Logged only when asked (KEYPORT_REQUEST_LOG_ASSETS).
STATIC_ASSET_PATHS = ("/admin/static/", "/schema/assets/")


class RequestLog:
    def __init__(
        self,
        sink: Sink | None = None,
        *,
        interval: float = LOG_INTERVAL,
        leave_out: tuple[str, ...] = (),
    ) -> None:
        """`leave_out`: path prefixes whose requests get no line (STATIC_ASSET_PATHS)."""
        self._sink = sink or StdoutSink()
        self._leave_out = leave_out
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
        if self._leave_out and record.path.startswith(self._leave_out):
            return
        records = self._records
        if len(records) + self._encoded_lines < MAX_BUFFERED_LINES:
            records.append(tuple(record))
            if len(records) >= ENCODE_STEP:
                self.write_pending(wait=False)  # a batch: ~0.3 ms, every ENCODE_STEP requests
        else:
            self.dropped += 1

    async def start(self) -> None:
        await self._loop.start()

    async def stop(self) -> None:
        """Stop the background task, then write what is left, waiting for stdout if need be."""
        await self._loop.stop()
        self.write_pending(wait=True)

    async def _tick(self) -> None:
        # Fewer than ENCODE_STEP records wait here (observe writes every full batch), and the
        # lines a stalled stdout did not take.
        self.write_pending(wait=False)

    def _encode(self, count: int) -> None:
        if not count:
            return
        records = self._records[:count]
        del self._records[:count]
        self._encoded.append(encoded_lines(records))
        self._encoded_lines += len(records)

    def write_pending(self, *, wait: bool) -> None:
        """Encode what was observed and write it, batch by batch; without `wait`, stop at the
        first chunk stdout cannot take now and keep the rest for the next tick. (The batches
        are not joined first: a quarter second's lines joined were a fresh megabyte whose
        pages the kernel faulted in on every tick.)"""
        self._encode(len(self._records))
        batches, self._encoded, self._encoded_lines = self._encoded, [], 0
        limit = self._sink.write_limit
        for at, batch in enumerate(batches):
            start = 0
            with memoryview(batch) as view:
                while start < len(batch):
                    if not wait and not self._sink.ready():
                        rest = [batch[start:], *batches[at + 1 :]]  # nothing is added meanwhile
                        self._encoded = rest
                        self._encoded_lines = sum(b.count(b"\n") for b in rest)
                        return
                    end = cut(batch, start, limit)
                    try:
                        self._sink.write(view[start:end])
                    except OSError:  # stdout closed: nothing sensible is left to do
                        self.dropped += batch.count(b"\n", start, end)
                    start = end
