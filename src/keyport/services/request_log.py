"""One JSON line per request on stdout, written in the background.

`observe` encodes the line (a few microseconds) and appends the bytes to a buffer; a
background task writes the buffer every LOG_INTERVAL seconds from a worker thread, so a slow
log reader never stalls requests. Buffering bytes, not records, matters: bytes are invisible
to the garbage collector, while thousands of buffered records would survive into its old
generation and set off full collections (measured: 5-10 % of throughput).

Lines carry ids, never credentials: no header is logged (the user agent neither), and a path
that contains something shaped like a key is redacted.

Writes are cut at line boundaries into chunks of at most PIPE_BUF bytes, which the OS writes
to a pipe atomically: lines of several workers sharing one stdout never interleave.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable

import msgspec

from keyport.domain.usage import MAX_PATH_LENGTH, without_keys
from keyport.services.requests import RequestRecord

logger = logging.getLogger(__name__)

LOG_INTERVAL = 0.25
MAX_BUFFERED_LINES = 100_000  # beyond this (stdout blocked for long), lines are dropped
PIPE_BUF = 4096
Sink = Callable[[bytes], None]


def stdout_sink(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()


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


class _Timestamps:
    """`2026-11-27T20:11:23.999Z`, formatting each whole second once (lines come in bursts)."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, posix_seconds: float) -> str:
        whole = int(posix_seconds)
        if whole != self._second:
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
            self._second = whole
        return f"{self._prefix}.{int((posix_seconds - whole) * 1000):03d}Z"


_encoder = msgspec.json.Encoder()
_timestamp = _Timestamps()


def log_line(record: RequestRecord) -> bytes:
    line = _Line(
        time=_timestamp(record.started_at),
        event="request",
        request_id=record.request_id,
        method=record.method[:16],
        path=without_keys(record.path, MAX_PATH_LENGTH),
        route=record.route,
        status=record.status,
        latency_ms=round(record.latency * 1000, 3),
        key_id=record.key_id,
        acting_user_id=record.acting_user_id,
        auth_failure=record.auth_failure,
        client_ip=record.client_ip,
    )
    return _encoder.encode(line) + b"\n"


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
    def __init__(self, sink: Sink = stdout_sink, *, interval: float = LOG_INTERVAL) -> None:
        self._sink = sink
        self._interval = interval
        self._pending: list[bytes] = []
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def observe(self, record: RequestRecord) -> None:
        if len(self._pending) < MAX_BUFFERED_LINES:
            self._pending.append(log_line(record))
        else:
            self.dropped += 1

    async def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self._run(), name="keyport-request-log")

    async def stop(self) -> None:
        """Finish the write in progress, then write what is left."""
        self._stopping.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._write(self._take())

    async def _run(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=self._interval)
            if self._pending and not self._stopping.is_set():
                await asyncio.to_thread(self._write, self._take())

    def _take(self) -> list[bytes]:
        taken, self._pending = self._pending, []
        return taken

    def _write(self, lines: list[bytes]) -> None:
        for chunk in chunks(lines):
            try:
                self._sink(chunk)
            except (OSError, ValueError):  # stdout closed: nothing sensible is left to do
                self.dropped += chunk.count(b"\n")
