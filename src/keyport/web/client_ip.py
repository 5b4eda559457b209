"""Who the client is, and over which scheme it came: the socket's, unless the socket's peer is
a proxy the operator trusts (KEYPORT_TRUSTED_PROXIES).

Only then is `X-Forwarded-For` read, from the right: each proxy appends the address it saw,
so the right-most address that is not a trusted proxy is the client. Anything to its left was
written by the client itself and is ignored. Without trusted proxies the header is ignored
altogether, so nobody can choose their own address (and with it their rate-limit bucket).

Parsing an address costs more than the rest of a cached request's authentication, and a
server meets the same few peers and proxies all day: `TrustedProxies` remembers what it
learned about each address text it has seen.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any, NamedTuple

from keyport.config import Network
from keyport.web.request_context import find_context

_SCHEMES = frozenset({"http", "https"})
_MAX_REMEMBERED = 10_000  # address texts; forgotten all at once beyond this (cheap to relearn)


class _Address(NamedTuple):
    text: str | None  # the address alone, normalised; None when the text is not an address
    trusted: bool


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
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


class TrustedProxies:
    """The operator's trusted proxy networks, and what each address text met so far is."""

    def __init__(self, networks: Sequence[Network] = ()) -> None:
        self.networks = tuple(networks)
        self._seen: dict[str, _Address] = {}

    def __bool__(self) -> bool:
        return bool(self.networks)

    def describe(self, text: str) -> _Address:
        """The address in `text`, normalised, and whether it is a trusted proxy."""
        known = self._seen.get(text)
        if known is None:
            parsed = _parse(text)
            trusted = parsed is not None and any(parsed in net for net in self.networks)
            if len(self._seen) >= _MAX_REMEMBERED:
                self._seen.clear()
            known = self._seen[text] = _Address(None if parsed is None else str(parsed), trusted)
        return known

    def trusts(self, address: str | None) -> bool:
        """Whether `address` (as the socket or a proxy wrote it) is a trusted proxy."""
        return bool(self.networks) and address is not None and self.describe(address).trusted


def resolve_client_ip(
    peer: str | None,
    proxies: TrustedProxies,
    forwarded_for: Sequence[bytes],
    *,
    peer_trusted: bool,
) -> str | None:
    """The client's address: the socket's `peer`, or when that is a trusted proxy
    (`peer_trusted`, which the caller has already asked `proxies`), read from `forwarded_for`
    (every X-Forwarded-For value, in order)."""
    if not peer_trusted:
        return peer
    hops = [part for value in forwarded_for for part in value.decode("latin-1").split(",")]
    for hop in reversed(hops):
        address = proxies.describe(hop)
        if address.text is None:
            return peer  # a trusted proxy would not write this: do not guess
        if not address.trusted:
            return address.text
    return proxies.describe(hops[0]).text if hops else peer


def forwarded_scheme(own: str, forwarded_proto: bytes | None) -> str:
    """For a request from a trusted proxy: its `X-Forwarded-Proto` (`forwarded_proto`, the last
    value; its right-most entry, the one the nearest proxy wrote), else the connection's own
    scheme. Only a trusted proxy may say so: anybody else could claim https to earn HSTS or
    make cookies look safe where they are not."""
    if forwarded_proto is None:
        return own
    nearest = forwarded_proto.decode("latin-1").split(",")[-1].strip().lower()
    return nearest if nearest in _SCHEMES else own


def client_ip(scope: Any) -> str | None:
    """The client address the gate resolved for this request (the peer if it did not run)."""
    context = find_context(scope)
    if context is not None:
        return context.client_ip
    client = scope.get("client")
    return str(client[0]) if client else None
