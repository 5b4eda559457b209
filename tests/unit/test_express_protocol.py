"""The protocol's express lane: a complete GET the gate answers at once is written from the
parser's callback (no task, no ASGI call); anything else goes to the application as before."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from keyport.web.gate import ApiGate
from keyport.web.http_protocol import KeyportHttpProtocol
from tests.unit.test_coalescing_transport import RecordingTransport


class Transport(RecordingTransport):
    def __init__(self) -> None:
        super().__init__()
        self.reading = True

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True


ANSWER = (200, [(b"content-type", b"application/json"), (b"content-length", b"2")], b"{}")


class ScriptedGate(ApiGate):
    """A gate whose express answer is set by the test; its usual path answers 204."""

    def __init__(self, express: tuple[int, list[tuple[bytes, bytes]], bytes] | None) -> None:
        self.express = express
        self.asked: list[str] = []
        self.called: list[str] = []

    def answer_now(self, scope: Any, memo: Any = None) -> Any:
        self.asked.append(scope["path"])
        return self.express

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called.append(scope["path"])
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def connect(
    gate: ApiGate, loop: Any = None, **config: Any
) -> tuple[KeyportHttpProtocol, Transport]:
    settings = {"access_log": False, **config}  # as `keyport serve` runs it, by default
    loaded = Config(app=gate, proxy_headers=False, lifespan="off", log_config=None, **settings)
    loaded.load()
    state = ServerState()
    state.default_headers = [(b"date", b"Tue, 01 Dec 2026 12:00:00 GMT")]
    protocol = KeyportHttpProtocol(config=loaded, server_state=state, app_state={}, _loop=loop)
    transport = Transport()
    protocol.connection_made(transport)  # type: ignore[arg-type]
    return protocol, transport


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_express_answer_is_written_without_a_task_or_the_application() -> None:
    gate = ScriptedGate(ANSWER)
    protocol, transport = connect(gate)
    protocol.data_received(b"GET /v4/user/me HTTP/1.1\r\nHost: x\r\n\r\n")
    assert gate.asked == ["/v4/user/me"] and gate.called == []
    assert protocol.server_state.tasks == set() and protocol.server_state.total_requests == 1
    await settle()
    assert transport.sent == [
        b"HTTP/1.1 200 OK\r\ndate: Tue, 01 Dec 2026 12:00:00 GMT\r\n"
        b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
    ]
    assert not transport.closed
    protocol.connection_lost(None)


async def test_http_1_0_gets_connection_close_and_the_connection_closed() -> None:
    protocol, transport = connect(ScriptedGate(ANSWER))
    protocol.data_received(b"GET /v4/user/me HTTP/1.0\r\n\r\n")
    await settle()
    assert transport.sent[0].endswith(b"content-length: 2\r\nconnection: close\r\n\r\n{}")
    assert transport.closed


async def test_what_the_gate_cannot_answer_at_once_goes_to_the_application() -> None:
    gate = ScriptedGate(None)
    protocol, transport = connect(gate)
    protocol.data_received(b"GET /v4/user HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert (gate.asked, gate.called) == (["/v4/user"], ["/v4/user"])
    assert transport.sent[0].startswith(b"HTTP/1.1 204 No Content\r\n")
    protocol.connection_lost(None)


async def test_a_request_with_a_body_is_never_asked_about() -> None:
    gate = ScriptedGate(ANSWER)
    protocol, transport = connect(gate)
    protocol.data_received(b"GET /v4/user/me HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
    await settle()
    assert (gate.asked, gate.called) == ([], ["/v4/user/me"])
    assert transport.sent[0].startswith(b"HTTP/1.1 204 No Content\r\n")
    protocol.connection_lost(None)


async def test_pipelined_requests_are_answered_in_order_whichever_way_each_goes() -> None:
    gate = ScriptedGate(ANSWER)
    protocol, transport = connect(gate)
    get = b"GET /v4/user/me HTTP/1.1\r\nHost: x\r\n\r\n"
    with_body = b"GET /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nx"
    protocol.data_received(get + with_body + get)
    await settle()
    answers = b"".join(transport.sent).split(b"HTTP/1.1 ")[1:]
    # The third waited behind the second (uvicorn's pipeline) and so went the usual way too.
    assert [answer[:3] for answer in answers] == [b"200", b"204", b"204"]
    assert (gate.asked, gate.called) == (["/v4/user/me"], ["/slow", "/v4/user/me"])
    protocol.connection_lost(None)


async def test_with_uvicorns_access_log_on_every_request_goes_the_usual_way() -> None:
    access = logging.getLogger("uvicorn.access")
    handler = logging.NullHandler()
    access.addHandler(handler)  # what uvicorn's access log configures
    try:
        gate = ScriptedGate(ANSWER)
        protocol, transport = connect(gate, access_log=True)
    finally:
        access.removeHandler(handler)
    protocol.data_received(b"GET /v4/user/me HTTP/1.1\r\nHost: x\r\n\r\n")
    await settle()
    assert (gate.asked, gate.called) == ([], ["/v4/user/me"])
    assert transport.sent[0].startswith(b"HTTP/1.1 204 No Content\r\n")
    protocol.connection_lost(None)


class Timer:
    def __init__(self, when: float, callback: Any) -> None:
        self.when, self.callback, self.cancelled = when, callback, False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """The protocol's loop for its keep-alive timer: time moves only when the test says."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.armed: list[Timer] = []

    def time(self) -> float:
        return self.now

    def call_later(self, delay: float, callback: Any) -> Timer:
        timer = Timer(self.now + delay, callback)
        self.armed.append(timer)
        return timer

    def create_task(self, coroutine: Any, **options: Any) -> asyncio.Task[Any]:
        return asyncio.get_running_loop().create_task(coroutine, **options)

    def advance(self, seconds: float) -> None:
        """Moves time on, running the timers that come due, in order."""
        self.now += seconds
        while due := sorted(
            (t for t in self.armed if t.when <= self.now and not t.cancelled),
            key=lambda t: t.when,
        ):
            self.armed.remove(due[0])
            due[0].callback()

    def live(self) -> int:
        return sum(not t.cancelled for t in self.armed)


GET = b"GET /v4/user/me HTTP/1.1\r\nHost: x\r\n\r\n"


async def test_an_idle_connection_is_closed_a_keep_alive_timeout_after_its_last_answer() -> None:
    timers = Timers()
    protocol, transport = connect(ScriptedGate(ANSWER), timers, timeout_keep_alive=5)
    for _ in range(3):
        protocol.data_received(GET)
        timers.advance(3)  # each request comes within the timeout of the last answer
    assert not transport.closed and timers.live() == 1  # one timer for all three
    timers.advance(1.9)  # 4.9 s idle since the last answer
    assert not transport.closed
    timers.advance(0.1)
    assert transport.closed


async def test_no_timeout_closes_a_connection_while_its_request_is_answered() -> None:
    timers = Timers()
    gate = ScriptedGate(None)  # the usual way: answered by a task, later
    protocol, transport = connect(gate, timers, timeout_keep_alive=5)
    protocol.data_received(b"GET /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n")
    timers.advance(60)
    assert not transport.closed  # headers still arriving: busy, as uvicorn has it
    protocol.data_received(b"\r\nx")
    await settle()
    assert transport.sent[0].startswith(b"HTTP/1.1 204")
    timers.advance(4.9)
    assert not transport.closed
    timers.advance(0.1)
    assert transport.closed


async def test_a_closed_connection_leaves_no_timer_behind() -> None:
    timers = Timers()
    protocol, _ = connect(ScriptedGate(ANSWER), timers, timeout_keep_alive=5)
    protocol.data_received(GET)
    assert timers.live() == 1
    protocol.connection_lost(None)
    assert timers.live() == 0
