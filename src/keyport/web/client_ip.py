"""Who the client is, and over which scheme it came: the socket's, unless the socket's peer is
a proxy the operator trusts (KEYPORT_TRUSTED_PROXIES).

Only then is `X-Forwarded-For` read, from the right: each proxy appends the address it saw,
so the right-most address that is not a trusted proxy is the client. Anything to its left was
written by the client itself and is ignored. Without trusted proxies the header is ignored
altogether, so nobody can choose their own address (and with it their rate-limit bucket).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, MutableMapping
from typing import Any

from keyport.config import Network
from keyport.web.request_context import find_context

_FORWARDED_FOR = b"x-forwarded-for"
_FORWARDED_PROTO = b"x-forwarded-proto"
_SCHEMES = frozenset({"http", "https"})


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as proxies write it: bare, `1.2.3.4:port` or `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _is_trusted(address: object, trusted: Iterable[Network]) -> bool:
    return address is not None and any(address in network for network in trusted)


def resolve_client_ip(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> str | None:
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    if not trusted or peer is None or not _is_trusted(_address(peer), trusted):
        return peer
    hops = [
        part
        for key, value in scope["headers"]
        if key == _FORWARDED_FOR
        for part in value.decode("latin-1").split(",")
    ]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer  # a trusted proxy would not write this: do not guess
        if not _is_trusted(address, trusted):
            return str(address)
    return str(_address(hops[0])) if hops else peer


def is_trusted_peer(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> bool:
    """Whether the socket's peer is one of the operator's trusted proxies."""
    client = scope.get("client")
    return bool(trusted and client and _is_trusted(_address(client[0]), trusted))


def resolve_scheme(scope: MutableMapping[str, Any], trusted: tuple[Network, ...]) -> str:
    """`X-Forwarded-Proto` (its right-most value, the one the nearest proxy wrote) when the
    peer is a trusted proxy; else the scheme of the connection itself. Anybody else could
    claim https to earn HSTS or make cookies look safe where they are not."""
    own: str = scope.get("scheme", "http")
    client = scope.get("client")
    if not trusted or not client or not _is_trusted(_address(client[0]), trusted):
        return own
    claimed = [v for k, v in scope["headers"] if k == _FORWARDED_PROTO]
    if not claimed:
        return own
    nearest = claimed[-1].decode("latin-1").split(",")[-1].strip().lower()
    return nearest if nearest in _SCHEMES else own


def client_ip(scope: Any) -> str | None:
    """The client address the gate resolved for this request (the peer if it did not run)."""
    context = find_context(scope)
    if context is not None:
        return context.client_ip
    client = scope.get("client")
    return str(client[0]) if client else None
