"""Sending webhooks over HTTP with httpx, refusing private targets (SSRF protection).

Every address a host name resolves to must be public unless private targets are allowed
(KEYPORT_WEBHOOK_ALLOW_PRIVATE=true): otherwise a company could make Keyport call its
internal network. Redirects are not followed, for the same reason.
"""

from __future__ import annotations

import asyncio
import socket
from urllib.parse import urlsplit

import httpx

from keyport.domain.webhooks import DELIVERY_TIMEOUT, is_public_address
from keyport.services.webhooks.delivery import Outcome

PRIVATE_REFUSED = (
    "must not point at a private, loopback or otherwise internal address"
    " (for local testing, start Keyport with KEYPORT_WEBHOOK_ALLOW_PRIVATE=true)"
)


class TargetGuard:
    def __init__(self, *, allow_private: bool) -> None:
        self._allow_private = allow_private

    async def refusal(self, url: str) -> str | None:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if self._allow_private:
            return None
        try:
            found = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return "names a host that does not resolve"
        addresses = {str(info[4][0]) for info in found}
        if not addresses or not all(is_public_address(a) for a in addresses):
            return PRIVATE_REFUSED
        return None


class HttpWebhookSender:
    def __init__(self, guard: TargetGuard, *, timeout: float = DELIVERY_TIMEOUT) -> None:
        self._guard = guard
        self._timeout = timeout
        self._client = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
            headers={"user-agent": "Keyport-Webhooks/1"},
        )

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        refusal = await self._guard.refusal(url)
        if refusal is not None:
            return Outcome(None, f"refused: {refusal}")
        try:
            # The client's timeout is per phase; this bounds the whole exchange.
            answer = await asyncio.wait_for(
                self._client.post(url, content=body, headers=headers), self._timeout
            )
        except (httpx.TimeoutException, TimeoutError):
            return Outcome(None, "timeout")
        except httpx.HTTPError as error:
            return Outcome(None, type(error).__name__)
        return Outcome(answer.status_code)

    async def close(self) -> None:
        await self._client.aclose()
