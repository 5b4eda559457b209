"""uvicorn's httptools protocol, answering in Keyport's error shape where uvicorn improvises:

- request headers are refused with 431 once a megabyte of them has arrived, while they are
  still being read: uvicorn sets no limit with httptools and would buffer any amount. (The
  gate refuses anything over 16 KiB with 431 anyway; this only caps what is buffered.)
- a request the HTTP parser cannot read (control characters in a header, a broken request
  line) gets 400 as JSON in the documented shape, not uvicorn's plain text;
- what is written in one turn of the event loop leaves in one send: uvicorn writes a
  response's head and its body separately, two system calls (the most expensive single step
  of a cached request, measured with py-spy: bench/README.md) where one does;
- the express lane: a complete GET that the gate can answer from memory alone
  (`ApiGate.answer_now`, web/gate/express.py: a fast route, every check passing without I/O) is
  answered inside the parser's callback, without an ASGI cycle, a task, or the ASGI messages
  and their checks — a third of such a request's CPU in one process (bench/README.md).
  Anything else, and any request while uvicorn's access log is on, goes the usual way, in
  order: a request is held only from its headers to its end, and only when no earlier request
  on the connection is still being answered. Each connection keeps the gate's `ExpressMemo`,
  so that a request repeating the one before it is prepared only once;
- the keep-alive timeout is armed lazily, one timer per idle spell rather than one per answer.

`keyport serve` passes this class to uvicorn as its HTTP protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)

from keyport.domain.errors import HeadersTooLarge
from keyport.web import errors
from keyport.web.gate import ApiGate, ExpressMemo

# Counted per chunk received, so it may overcount by one chunk of a previous request's body:
# far above the gate's limit, it never refuses headers the gate would accept.
MAX_BUFFERED_HEAD = 1024 * 1024
_UNREADABLE = errors.error_body(400, "Invalid HTTP request")
_TOO_LARGE = errors.render(HeadersTooLarge())[1]


class CoalescingTransport:
    """A transport whose writes in one turn of the event loop are sent together at its end
    (before a close, at once). Everything but writing and closing is the real transport's."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        pending = self._pending
        if pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            pending.append(data)

    def flush(self) -> None:
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_write_buffer_size(self) -> int:
        pending = sum(map(len, self._pending)) if self._pending else 0
        return self._transport.get_write_buffer_size() + pending

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class KeyportHttpProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._reading_head = False  # inside a request line and headers
        self._head_bytes = 0
        gate = self.app
        self._answer_now = (
            gate.answer_now if isinstance(gate, ApiGate) and not self.access_log else None
        )
        self._held: tuple[RequestResponseCycle, Any] | None = None  # for the express lane
        self._memo = ExpressMemo()  # this connection's last express request
        self._idle_since: float | None = None  # loop time of the last answer; None: busy

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
        super().connection_made(cast(asyncio.Transport, coalescing))

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._reading_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_BUFFERED_HEAD:
                self._answer_and_close(431, _TOO_LARGE)

    def on_message_begin(self) -> None:
        self._reading_head = True
        self._head_bytes = 0
        # A request arrives: the connection is busy (an express answer may have left it idle
        # from inside the parser, before a request pipelined behind it).
        self._idle_since = None
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._reading_head = False
        super().on_headers_complete()

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        # Called by uvicorn only from on_headers_complete (its other caller, on_response_complete,
        # is replaced below): a request whose head has just been read.
        if app is self.app and self._answer_now is not None:
            self._held = (cycle, app)  # until the request is complete: on_message_complete
            return
        super()._start_asgi_task(cycle, app)

    def on_body(self, body: bytes) -> None:
        self._release_held()  # a request with a body goes the usual way
        super().on_body(body)

    def on_message_complete(self) -> None:
        super().on_message_complete()
        held = self._held
        if held is None:
            return
        cycle = held[0]
        scope = cast(Any, cycle.scope)
        answer = self._answer_now(scope, self._memo) if self._answer_now else None
        if answer is None:
            self._release_held()
            return
        self._held = None
        self._answer(cycle, *answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self._held = None  # never started: nothing to cancel
        self._memo = ExpressMemo()  # forgets the last request's headers
        timer, self.timeout_keep_alive_task = self.timeout_keep_alive_task, None
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    # The keep-alive timeout, armed lazily. uvicorn arms a timer after every answer and cancels
    # it when the next request arrives: a timer object and a heap entry per request, ~4 % of
    # an express request's CPU. Here an answer notes when the connection fell idle and arms a
    # timer only if none is armed; when it fires, it closes the connection if it has been idle
    # for the whole timeout since the last answer, else waits for the rest of it (or, while a
    # request is being answered, for the next answer to arm it again).

    def _unset_keepalive_if_required(self) -> None:
        """uvicorn calls this when data arrives: the connection is busy, not idle."""
        self._idle_since = None

    def on_response_complete(self) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        self.flow.resume_reading()
        if self.pipeline:
            self._idle_since = None
            super()._start_asgi_task(*self.pipeline.pop())
            return
        self._idle_since = self.loop.time()
        if self.timeout_keep_alive_task is None:
            self._arm_keep_alive(self.timeout_keep_alive)

    def _arm_keep_alive(self, delay: float) -> None:
        self.timeout_keep_alive_task = self.loop.call_later(delay, self._keep_alive_due)

    def _keep_alive_due(self) -> None:
        self.timeout_keep_alive_task = None
        idle_since = self._idle_since
        if idle_since is None:
            return  # a request is being answered: its answer arms the timer again
        left = idle_since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self._arm_keep_alive(left)
        else:
            self.timeout_keep_alive_handler()

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            super()._start_asgi_task(*held)

    def _answer(
        self, cycle: RequestResponseCycle, status: int, headers: errors.Headers, body: bytes
    ) -> None:
        """Write a whole answer as uvicorn's cycle would have, and finish the request.

        uvicorn's checks of header names and values are not run: the express lane's headers
        are Keyport's own (constants, ids, numbers, scopes validated when the key was made)."""
        cycle.response_started = cycle.response_complete = True
        if not cycle.keep_alive:
            headers = [*headers, (b"connection", b"close")]
        self.transport.write(self._response(status, headers, body))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(400, _UNREADABLE)

    def _answer_and_close(self, status: int, body: bytes) -> None:
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        self.transport.write(self._response(status, headers, body))
        self.transport.close()

    def _response(self, status: int, headers: errors.Headers, body: bytes) -> bytes:
        """Status line, uvicorn's default headers (`date`), `headers`, then the body."""
        defaults = self.server_state.default_headers
        if defaults is not _defaults[0]:  # uvicorn sets a new list when the date changes
            _defaults[:] = defaults, b"".join(b"%s: %s\r\n" % header for header in defaults)
        lines = [b"%s: %s\r\n" % header for header in headers]
        return b"".join((STATUS_LINE[status], _defaults[1], *lines, b"\r\n", body))


# uvicorn's default headers (shared by every connection), and the same encoded.
_defaults: list[Any] = [None, b""]
