"""A stand-in for Keyport's `/v1/authorize` on the loopback, for the keyport-client's own
contract: it records every question (target, headers, which connection) and answers what the
test sets, so a test can see exactly what one guarded request asked and how often."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Headers = list[tuple[str, str]]

IDENTITY: dict[str, Any] = {
    "keyId": "6a0c5f0e-8d43-4b43-9a43-6f2a3f0e8d43",
    "companyId": "0b3e8a1c-2f4d-4c5e-8f6a-7b8c9d0e1f2a",
    "userId": "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
    "userRole": "owner",
    "scopes": ["*"],
    "expiresAt": "2030-01-01T00:00:00Z",
}


@dataclass(frozen=True)
class Asked:
    method: str
    target: str
    headers: Headers  # as sent, duplicates kept, names lower-cased
    connection: int  # the asking side's port: one per connection

    def header(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key == name]


@dataclass
class Reply:
    status: int = 200
    body: bytes = field(default_factory=lambda: json.dumps(IDENTITY).encode())
    headers: Headers = field(default_factory=lambda: [("content-type", "application/json")])
    delay: float = 0.0
    chunked: bool = False
    close: bool = False  # `Connection: close` after this answer


def refusal(status: int, message: str, error: str, *headers: tuple[str, str]) -> Reply:
    body = {"statusCode": status, "message": message, "error": error}
    return Reply(
        status, json.dumps(body).encode(), [("content-type", "application/json"), *headers]
    )


class FakeKeyport:
    def __init__(self) -> None:
        self.asked: list[Asked] = []
        self.reply: Callable[[Asked], Reply] = lambda _: Reply()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def answer(self, reply: Reply | Callable[[Asked], Reply]) -> None:
        self.reply = reply if callable(reply) else (lambda _: reply)

    def connections(self) -> set[int]:
        return {asked.connection for asked in self.asked}

    def start(self) -> FakeKeyport:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _handler(fake: FakeKeyport) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True
        wbufsize = -1  # one write per answer (flushed after each), as a real server sends it

        def do_GET(self) -> None:
            asked = Asked(
                self.command,
                self.path,
                [(k.lower(), v) for k, v in self.headers.items()],
                self.client_address[1],
            )
            fake.asked.append(asked)
            reply = fake.reply(asked)
            if reply.delay:
                time.sleep(reply.delay)
            self.send_response(reply.status)
            for name, value in reply.headers:
                self.send_header(name, value)
            if reply.close:
                self.send_header("connection", "close")
                self.close_connection = True
            if reply.chunked:
                self.send_header("transfer-encoding", "chunked")
                self.end_headers()
                half = len(reply.body) // 2
                for part in (reply.body[:half], reply.body[half:], b""):
                    self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                return
            self.send_header("content-length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, *_: Any) -> None:
            pass

    return Handler


@contextmanager
def fake_keyport() -> Iterator[FakeKeyport]:
    fake = FakeKeyport().start()
    try:
        yield fake
    finally:
        fake.stop()


@contextmanager
def silent_listener() -> Iterator[str]:
    """An address that accepts connections and never answers: Keyport hung."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def closed_address() -> str:
    """An address where nothing listens: Keyport down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"
