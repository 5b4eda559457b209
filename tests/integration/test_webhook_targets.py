"""Issue 30, items 3 and 9: where a webhook may go, that it goes exactly where it was checked,
and that a receiver's answer is read only up to a small prefix.

The receivers here listen on loopback; the "public" address of the rebinding test is never
connected to (a recording network backend stands in for the network)."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import Iterable

import httpcore
import pytest

from keyport.bootstrap import Container
from keyport.domain.audit import Actor
from keyport.domain.errors import ValidationFailed
from keyport.domain.webhooks import IPV4_SPELLING, is_public_address
from keyport.outbound.webhook_http import (
    MAX_ANSWER_BYTES,
    PRIVATE_REFUSED,
    HttpWebhookSender,
    TargetGuard,
)
from tests.conftest import make_tenant
from tests.support.receiver import Receiver

EMBEDDED_IPV4 = [
    "2002:7f00:1::",  # 6to4 of 127.0.0.1
    "2002:808:808::1",  # 6to4 of a public 8.8.8.8: refused all the same
    "64:ff9b::7f00:1",  # NAT64 (well-known prefix) of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
    "64:ff9b:1::7f00:1",  # NAT64 (local-use prefix)
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:8.8.8.8",
    "::127.0.0.1",  # IPv4-compatible
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
]
ODD_IPV4_SPELLINGS = [
    "2130706433",  # decimal
    "017700000001",  # octal
    "0x7f000001",  # hex
    "0x7f.0.0.1",
    "0177.0.0.1",
    "127.1",
    "127.0.0.01",
    "0x7f.1.",
]


@pytest.mark.parametrize("address", EMBEDDED_IPV4)
def test_an_ipv6_address_that_embeds_ipv4_is_never_public(address: str) -> None:
    assert is_public_address(address) is False


def test_plain_public_addresses_stay_public() -> None:
    assert is_public_address("8.8.8.8") and is_public_address("2606:4700::1111")


async def _refusal(container: Container, company_id: str, url: str) -> str:
    with pytest.raises(ValidationFailed) as refused:
        await container.webhooks.add_endpoint(company_id, url, [], Actor.cli())
    [error] = refused.value.errors
    assert error.field == "url"
    return error.message


async def test_every_embedded_ipv4_form_and_spelling_is_refused(container: Container) -> None:
    tenant = await make_tenant(container, "Acme")
    for address in EMBEDDED_IPV4:
        url = f"http://[{address}]:8080/hook"
        assert await _refusal(container, tenant.company_id, url) == PRIVATE_REFUSED, url
    for host in ODD_IPV4_SPELLINGS:
        url = f"http://{host}/hook"
        assert await _refusal(container, tenant.company_id, url) == IPV4_SPELLING, url
    # Such spellings are odd even where private targets are allowed.
    guard = TargetGuard(allow_private=True)
    assert (await guard.target("http://2130706433/hook")).address == "127.0.0.1"


class Resolutions:
    """A resolver that answers one list of addresses first, and another to every later ask."""

    def __init__(self, first: list[str], later: list[str]) -> None:
        self.answers = [first, later]
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[min(len(self.asked), 2) - 1]


class RecordingBackend(httpcore.AsyncNetworkBackend):
    """Records where a connection would go, and connects nowhere."""

    def __init__(self) -> None:
        self.connections: list[tuple[str, int]] = []

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.connections.append((host, port))
        raise httpcore.ConnectError("not in tests")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("not in tests")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def test_the_connection_goes_to_the_very_address_that_was_checked() -> None:
    """DNS rebinding: a public address for the check, loopback a moment later. The name is
    resolved once and the connection goes to the public address it answered then."""
    resolver = Resolutions(["8.8.8.8"], ["127.0.0.1"])
    backend = RecordingBackend()
    sender = HttpWebhookSender(TargetGuard(allow_private=False, resolve=resolver), backend=backend)
    outcome = await sender.send("https://rebind.example/hook", {}, b"{}")

    assert (outcome.status_code, outcome.error) == (None, "ConnectError")
    assert resolver.asked == [("rebind.example", 443)]
    assert backend.connections == [("8.8.8.8", 443)]


async def test_a_name_that_resolves_to_any_internal_address_is_refused_unsent() -> None:
    resolver = Resolutions(["8.8.8.8", "10.0.0.1"], ["8.8.8.8"])
    backend = RecordingBackend()
    sender = HttpWebhookSender(TargetGuard(allow_private=False, resolve=resolver), backend=backend)
    outcome = await sender.send("https://mixed.example/hook", {}, b"{}")

    assert outcome.error == f"refused: {PRIVATE_REFUSED}"
    assert backend.connections == []


async def test_a_delivery_reaches_the_checked_address_under_the_urls_host_name(
    receiver: Receiver,
) -> None:
    """Through a real receiver: the second resolution (127.0.0.2, where nothing listens)
    is never asked for; the request names the URL's host."""
    port = int(receiver.url.rsplit(":", 1)[1].split("/", 1)[0])
    resolver = Resolutions(["127.0.0.1"], ["127.0.0.2"])
    sender = HttpWebhookSender(TargetGuard(allow_private=True, resolve=resolver))
    outcome = await sender.send(
        f"http://hooks.rebind.test:{port}/hooks", {"webhook-id": "msg_1"}, b'{"a":1}'
    )

    assert outcome.status_code == 204
    [request] = receiver.wait_for(1)
    assert request.headers["host"] == f"hooks.rebind.test:{port}"
    assert (request.headers["webhook-id"], request.body) == ("msg_1", b'{"a":1}')
    assert len(resolver.asked) == 1


HUGE = 256 * 1024 * 1024  # what the receiver offers to send


async def test_a_huge_answer_is_read_only_up_to_a_small_prefix() -> None:
    """A receiver that answers 256 MiB: the sender reads 64 KiB, closes the connection, and
    its memory stays flat; the receiver gets no further than the sockets' buffers."""
    sent = 0
    finished = asyncio.Event()

    async def answer_hugely(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % HUGE)
        chunk = b"x" * 65536
        try:
            while sent < HUGE:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
        except ConnectionError:
            pass  # the sender closed the connection: what this test waits for
        finally:
            writer.close()
            finished.set()

    server = await asyncio.start_server(answer_hugely, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sender = HttpWebhookSender(TargetGuard(allow_private=True))
    tracemalloc.start()
    try:
        outcome = await sender.send(f"http://127.0.0.1:{port}/hooks", {}, b"{}")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    await asyncio.wait_for(finished.wait(), 10)
    server.close()
    await server.wait_closed()

    assert outcome.status_code == 200
    assert peak < 16 * MAX_ANSWER_BYTES  # 1 MiB; reading the whole answer took 256 MiB
    assert sent < 32 * 1024 * 1024  # the loopback sockets' buffers, not the answer
