"""SIGTERM, the way a platform stops a process: `keyport serve` stops accepting connections,
finishes the requests in flight, writes the usage it counted, and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import urllib.request
from pathlib import Path

import pytest

from tests.support.seed import create_keys, init_company
from tests.support.server import ServerProcess, keyport_env
from tests.support.usage import usage_totals_at
from tests.support.waiting import wait_until

BODY = json.dumps(
    {"email": "late@acme.test", "givenName": "Late", "familyName": "Comer", "timezone": "UTC"}
).encode()


def start_slow_request(port: int, key: str) -> socket.socket:
    """A POST whose headers and first half of the body are sent; the rest comes later."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    head = (
        f"POST /v4/user HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(BODY)}\r\n\r\n"
    )
    sock.sendall(head.encode() + BODY[:10])
    return sock


def finish(sock: socket.socket) -> tuple[int, dict[str, object]]:
    sock.sendall(BODY[10:])
    raw = b""
    while b"\r\n\r\n" not in raw or len(raw.split(b"\r\n\r\n", 1)[1]) < _length(raw):
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    sock.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _length(raw: bytes) -> int:
    for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


async def requests_counted(database_url: str, key_id: str) -> int:
    return sum(await usage_totals_at(database_url, key_id))


def users_cached(server: ServerProcess) -> int:
    """Entries in the process's user cache, from its Prometheus metrics."""
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    found = re.search(r'^keyport_cache_entries\{cache="user"\} (\d+)', text, re.MULTILINE)
    assert found is not None, text
    return int(found.group(1))


def accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.mark.slow
def test_sigterm_finishes_requests_in_flight_writes_usage_and_exits_0(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'shutdown.db'}"
    # A long flush interval: only the shutdown itself can have written the usage.
    env = keyport_env(database_url, KEYPORT_USAGE_FLUSH_INTERVAL="3600")
    init_company(env, "Acme", "o@acme.test")
    (key,) = create_keys(env, 1)
    server = ServerProcess(env, tmp_path / "server.log").start()
    assert server.process is not None
    try:
        in_flight = start_slow_request(server.port, key["key"])
        # The handler resolved the acting user (into the user cache) and waits for the body.
        wait_until(lambda: users_cached(server) == 1, "the request reached its handler")
        os.killpg(server.process.pid, signal.SIGTERM)
        wait_until(lambda: not accepts_connections(server.port), "new connections refused")
        assert server.process.poll() is None  # still finishing the one in flight
        status, body = finish(in_flight)
        exit_code = server.process.wait(15)
    finally:
        server.stop()

    assert (status, set(body)) == (201, {"userId", "companyId"})
    assert exit_code == 0, server.output()
    assert asyncio.run(requests_counted(database_url, key["id"])) == 1
