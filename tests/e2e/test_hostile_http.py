"""Hostile HTTP against the real server (uvicorn with Keyport's protocol): what the parser
sees before any application code still gets an answer in the documented JSON shape."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator

import pytest

from tests.support.seed import served_with_one_key
from tests.support.server import ServerProcess


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, str]]:
    with served_with_one_key(tmp_path_factory.mktemp("hostile")) as served:
        yield served


def exchange(port: int, raw: bytes) -> tuple[int, dict[str, str], object]:
    """Sends raw bytes, reads one answer (the server may close before reading everything)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        # Refused before we finished sending: the answer is waiting all the same.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(raw)
        received = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            head, _, body = received.partition(b"\r\n\r\n")
            headers = _headers(head)
            if _ and len(body) >= int(headers.get("content-length", "0")):
                break
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split()[1]), _headers(head), json.loads(body)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    return {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def get(path: str, *headers: bytes) -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + b"".join(headers) + b"\r\n"


@pytest.mark.parametrize("size", [20_000, 300_000, 3_000_000])
def test_oversized_headers_get_431_in_the_documented_shape(
    served: tuple[ServerProcess, str], size: int
) -> None:
    server, _ = served
    status, headers, body = exchange(
        server.port, get("/v4/user/me", b"X-Big: " + b"a" * size + b"\r\n")
    )
    assert (status, headers["content-type"]) == (431, "application/json")
    assert body == {
        "statusCode": 431,
        "message": "Request Header Fields Too Large",
        "error": "Request Header Fields Too Large",
    }


def test_a_header_the_parser_refuses_gets_400_in_the_documented_shape(
    served: tuple[ServerProcess, str],
) -> None:
    server, _ = served
    for bad in [b"X-Ctl: a\x01b\r\n", b"Bad Header Name: x\r\n", b"X-Nul: \x00\r\n"]:
        status, headers, body = exchange(server.port, get("/healthz", bad))
        assert (status, headers["content-type"]) == (400, "application/json")
        assert body == {
            "statusCode": 400,
            "message": "Invalid HTTP request",
            "error": "Bad Request",
        }


def test_a_body_over_64_kib_gets_413_in_the_documented_shape(
    served: tuple[ServerProcess, str],
) -> None:
    server, key = served
    body = b'{"email": "' + b"a" * 100_000 + b'"}'
    raw = (
        b"POST /v4/user HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    status, _, answer = exchange(server.port, raw)
    assert (status, answer) == (
        413,
        {"statusCode": 413, "message": "Payload Too Large", "error": "Request Entity Too Large"},
    )


def test_non_ascii_header_bytes_are_answered_not_crashed_on(
    served: tuple[ServerProcess, str],
) -> None:
    server, key = served
    user = b"x-meetergo-api-user-id: " + "é".encode("latin-1") * 36 + b"\r\n"
    status, _, body = exchange(
        server.port, get("/v4/user/me", f"Authorization: Bearer {key}\r\n".encode(), user)
    )
    assert (status, body) == (
        400,
        {
            "statusCode": 400,
            "message": "Invalid user: x-meetergo-api-user-id must be a UUID",
            "error": "Bad Request",
        },
    )


NON_CANONICAL = [
    "//v4/user/me",
    "/%2Fv4/user/me",
    "/v4//user/me",
    "/v4/./user/me",
    "/x/../v4/user/me",
    "/v4/user/%2e%2e/user/me",
    "//v1/authorize",
    "/admin/static/admin.css%00.html",
]


@pytest.mark.parametrize("path", NON_CANONICAL)
def test_another_spelling_of_an_api_path_never_skips_the_gate(
    served: tuple[ServerProcess, str], path: str
) -> None:
    """Issue 9, item 1, through uvicorn's own parsing: refused as non-canonical, with or
    without a key; and no traceback in the server's log."""
    server, key = served
    for extra in ([], [f"Authorization: Bearer {key}\r\n".encode()]):
        status, _, body = exchange(server.port, get(path, *extra))
        assert (status, body) == (
            400,
            {"statusCode": 400, "message": "Invalid request path", "error": "Bad Request"},
        )
    assert "Traceback" not in server.output()


def test_duplicate_identity_headers_get_400_through_the_real_server(
    served: tuple[ServerProcess, str],
) -> None:
    server, key = served
    auth = f"Authorization: Bearer {key}\r\n".encode()
    status, _, body = exchange(server.port, get("/v4/user/me", auth, auth))
    assert (status, body) == (
        400,
        {"statusCode": 400, "message": "Duplicate header: authorization", "error": "Bad Request"},
    )
