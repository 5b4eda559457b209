"""The express lane over real HTTP (uvicorn with Keyport's protocol): requests answered inside
the parser's callback keep HTTP's rules — pipelined answers in order, mixed with requests that
go the usual way, `Connection: close` and HTTP/1.0 honoured, a GET with a body answered too."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.seed import served_with_one_key
from tests.support.server import ServerProcess


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with served_with_one_key(tmp_path_factory.mktemp("express")) as served:
        yield served


def request(path: str, key: str, *extra: bytes, version: bytes = b"1.1") -> bytes:
    return (
        b"GET " + path.encode() + b" HTTP/" + version + b"\r\nHost: x\r\n"
        b"Authorization: Bearer " + key.encode() + b"\r\n" + b"".join(extra) + b"\r\n"
    )


class Connection:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, raw: bytes) -> None:
        self.sock.sendall(raw)

    def answer(self) -> Answer:
        """The next whole answer on the connection (content-length framed)."""
        while b"\r\n\r\n" not in self.buffer:
            self._receive()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(":") for x in lines)}
        size = int(headers["content-length"])
        while len(self.buffer) < size:
            self._receive()
        body, self.buffer = self.buffer[:size], self.buffer[size:]
        return Answer(int(status_line.split()[1]), headers, body)

    def closed_by_server(self) -> bool:
        """Whether the server closes the connection within the deadline (nothing else sent)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = self.sock.recv(65536)
            if not chunk:
                return True
            self.buffer += chunk
        return False

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed by the server")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def connection(served: tuple[ServerProcess, str]) -> Iterator[Connection]:
    server, key = served
    warm = Connection(server.port)  # fills the caches the express lane answers from
    warm.send(request("/v4/user/me", key) + request("/v1/authorize", key))
    assert (warm.answer().status, warm.answer().status) == (200, 200)
    warm.close()
    opened = Connection(server.port)
    yield opened
    opened.close()


def test_pipelined_answers_come_in_order_whichever_way_each_request_goes(
    served: tuple[ServerProcess, str], connection: Connection
) -> None:
    _, key = served
    connection.send(request("/v4/user/me", key))
    owner_id = connection.answer().json()["id"]  # type: ignore[index]
    as_owner = b"x-meetergo-api-user-id: " + owner_id.encode() + b"\r\n"
    connection.send(
        request("/v4/user/me", key)  # express
        + request("/v4/user", key, as_owner)  # the framework
        + request("/v4/user/me", key)  # express, behind it
        + request("/v1/authorize?scope=users:read", key)
        + request("/v4/user/me", key, b"x-meetergo-api-user-id: nope\r\n")  # refused: 400
        + request("/v1/authorize", key, b"Prefer: return=minimal\r\n")
    )
    me, users, me_again, authorized, refused, minimal = (connection.answer() for _ in range(6))
    owner = me.json()
    assert isinstance(owner, dict) and owner["email"] == "o@acme.test"
    assert (me.status, me_again.status, me_again.json()) == (200, 200, owner)
    listed = users.json()
    assert users.status == 200 and isinstance(listed, dict)
    assert [u["id"] for u in listed["users"]] == [owner_id]
    assert authorized.status == 200 and authorized.headers["x-keyport-user-id"] == owner["id"]
    assert refused.status == 400
    assert refused.json() == {
        "statusCode": 400,
        "message": "Invalid user: x-meetergo-api-user-id must be a UUID",
        "error": "Bad Request",
    }
    assert (minimal.status, minimal.body, minimal.headers["preference-applied"]) == (
        200,
        b"",
        "return=minimal",
    )
    answers = (me, users, me_again, authorized, refused, minimal)
    assert len({a.headers["x-request-id"] for a in answers}) == 6
    assert all("date" in a.headers and "connection" not in a.headers for a in answers)
    assert me.headers["content-type"] == "application/json"
    assert int(me.headers["ratelimit-remaining"]) > int(me_again.headers["ratelimit-remaining"])


@pytest.mark.parametrize(
    ("version", "extra"), [(b"1.1", b"Connection: close\r\n"), (b"1.0", b"")], ids=["close", "1.0"]
)
def test_an_answer_that_ends_the_connection_says_so_and_closes_it(
    served: tuple[ServerProcess, str], connection: Connection, version: bytes, extra: bytes
) -> None:
    _, key = served
    connection.send(request("/v4/user/me", key, extra, version=version))
    answer = connection.answer()
    assert (answer.status, answer.headers["connection"]) == (200, "close")
    assert connection.closed_by_server()


def test_a_get_with_a_body_is_answered_and_the_connection_goes_on(
    served: tuple[ServerProcess, str], connection: Connection
) -> None:
    _, key = served
    connection.send(request("/v4/user/me", key, b"Content-Length: 2\r\n") + b"{}")
    with_body = connection.answer()
    connection.send(request("/v4/user/me", key))
    after = connection.answer()
    assert (with_body.status, after.status) == (200, 200)
    assert with_body.json() == after.json()
