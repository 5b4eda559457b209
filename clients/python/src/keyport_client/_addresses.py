"""The client address that Keyport is told: the one the app's server saw, unless the app runs
behind proxies of its own that it names (`trusted_proxies`).

Only then is a client-sent `X-Forwarded-For` read, from the right: each proxy appends the
address it saw, so the right-most address that is not one of the app's proxies is the client;
anything to its left was written by the client itself. Without trusted proxies the header is
never read, so that nobody can choose the address a key's allowlist is checked against.

Keyport, in turn, believes the address only when the app's own host is in its
`KEYPORT_TRUSTED_PROXIES`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_MAX_REMEMBERED = 1_000


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address as servers and proxies write it: bare, `1.2.3.4:port` or `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def parse_networks(texts: Iterable[str] | str) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `127.0.0.1`, `::1`: a list, or one comma-separated string."""
    if isinstance(texts, str):
        texts = [part for part in texts.split(",") if part.strip()]
    return tuple(ipaddress.ip_network(text.strip(), strict=False) for text in texts)


class ClientAddress:
    """Tells the client's address from the peer's and, behind trusted proxies, the
    `X-Forwarded-For` values."""

    def __init__(self, trusted_proxies: Iterable[str] | str = ()) -> None:
        self.networks = parse_networks(trusted_proxies)
        self._trusted: dict[str, bool] = {}

    def _is_proxy(self, text: str) -> bool:
        known = self._trusted.get(text)
        if known is None:
            address = _parse(text)
            known = address is not None and any(address in net for net in self.networks)
            if len(self._trusted) >= _MAX_REMEMBERED:
                self._trusted.clear()
            self._trusted[text] = known
        return known

    def of(self, peer: str | None, forwarded_for: Sequence[str]) -> str | None:
        if not self.networks or peer is None or not self._is_proxy(peer):
            return peer
        hops = [hop for value in forwarded_for for hop in value.split(",")]
        for hop in reversed(hops):
            address = _parse(hop)
            if address is None:
                return peer  # no proxy of the app's would write this: do not guess
            if not self._is_proxy(hop):
                return str(address)
        return peer if not hops else str(_parse(hops[0]))
