"""Sending webhooks over HTTP, refusing internal targets (SSRF protection).

The receiver's host name is resolved once. Unless private targets are allowed
(KEYPORT_WEBHOOK_ALLOW_PRIVATE=true), every address it resolves to must be public, in every
spelling (domain/webhooks.py: IPv4 in 6to4, NAT64, mapped or compatible IPv6; decimal, octal
and hex IPv4): otherwise a company could make Keyport call its internal network. The
connection then goes to the very address that was checked — the HTTP client's network backend
connects there, whatever the name resolves to by then — so a name that answers a public
address to the check and an internal one a moment later (DNS rebinding) reaches nothing
internal. TLS still verifies the certificate against the host name. Redirects are not followed.

A receiver's answer is read up to MAX_ANSWER_BYTES, then the connection is closed: its status
is all that counts, and a receiver that answers gigabytes costs no more memory than one that
answers nothing. The whole exchange is bounded in time as well.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpcore
import httpx

from keyport.domain.webhooks import DELIVERY_TIMEOUT, host_spelling_problem, is_public_address
from keyport.services.webhooks.delivery import Outcome

PRIVATE_REFUSED = (
    "must not point at a private, loopback or otherwise internal address"
    " (for local testing, start Keyport with KEYPORT_WEBHOOK_ALLOW_PRIVATE=true)"
)
UNRESOLVABLE = "names a host that does not resolve"
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = b"Keyport-Webhooks/1"
_FAILURES = (httpcore.NetworkError, httpcore.ProtocolError, httpcore.UnsupportedProtocol, OSError)

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the system resolver's order."""
    found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in found]


@dataclass(frozen=True, slots=True)
class Target:
    """Where one delivery connects, or why it may not."""

    address: str | None
    refusal: str | None = None


class TargetGuard:
    def __init__(self, *, allow_private: bool, resolve: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolve = resolve

    async def refusal(self, url: str) -> str | None:
        """Why `url` may not receive webhooks, asked when an endpoint is added (with private
        targets allowed, a name need not resolve yet)."""
        if self._allow_private:
            return None
        return (await self.target(url)).refusal

    async def target(self, url: str) -> Target:
        """The one address a delivery to `url` connects to, resolved and checked once."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        spelling = host_spelling_problem(host)
        if spelling is not None and not self._allow_private:
            return Target(None, spelling)
        try:
            addresses = await self._resolve(host, port)
        except OSError:
            return Target(None, UNRESOLVABLE)
        if not addresses:
            return Target(None, UNRESOLVABLE)
        if not self._allow_private and not all(is_public_address(a) for a in addresses):
            return Target(None, PRIVATE_REFUSED)
        return Target(addresses[0])


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects every connection to one address, whatever host the URL names."""

    def __init__(self, address: str, inner: httpcore.AsyncNetworkBackend) -> None:
        self._address = address
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return await self._inner.connect_tcp(
            self._address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's signature)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("webhooks are sent over TCP only")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


async def read_prefix(chunks: AsyncIterator[bytes], limit: int = MAX_ANSWER_BYTES) -> int:
    """Reads a body until `limit` bytes came (one socket read more at worst), then stops; the
    bytes read."""
    read = 0
    async for chunk in chunks:
        read += len(chunk)
        if read >= limit:
            break
    return read


class HttpWebhookSender:
    def __init__(
        self,
        guard: TargetGuard,
        *,
        timeout: float = DELIVERY_TIMEOUT,
        backend: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self._guard = guard
        self._timeout = timeout
        self._backend = backend or httpcore.AnyIOBackend()
        self._ssl: ssl.SSLContext = httpx.create_ssl_context(trust_env=False)

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        target = await self._guard.target(url)
        if target.address is None:
            return Outcome(None, f"refused: {target.refusal}")
        try:
            # Each phase has the timeout; this bounds the whole exchange.
            status = await asyncio.wait_for(
                self._post(target.address, url, headers, body), self._timeout
            )
        except (httpcore.TimeoutException, TimeoutError):
            return Outcome(None, "timeout")
        except _FAILURES as error:
            return Outcome(None, type(error).__name__)
        return Outcome(status)

    async def _post(self, address: str, url: str, headers: dict[str, str], body: bytes) -> int:
        # A connection of its own per delivery: nothing pooled outlives the check it was made
        # for, and an answer left unread closes its connection.
        async with (
            httpcore.AsyncConnectionPool(
                ssl_context=self._ssl,
                max_connections=1,
                network_backend=PinnedBackend(address, self._backend),
            ) as pool,
            pool.stream(
                "POST",
                url,
                headers=[(b"user-agent", USER_AGENT), *headers.items()],
                content=body,
                extensions={"timeout": dict.fromkeys(_PHASES, self._timeout)},
            ) as answer,
        ):
            await read_prefix(answer.aiter_stream())
            return answer.status

    async def close(self) -> None:
        """Nothing is kept open between deliveries."""


_PHASES = ("connect", "read", "write", "pool")
